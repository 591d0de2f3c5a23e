package live

import (
	"os"
	"testing"

	"github.com/cofferhq/coffer/internal/k8stest"
)

var cluster *k8stest.Cluster

func TestMain(m *testing.M) { os.Exit(k8stest.Main(m, k8stest.Options{}, &cluster)) }
