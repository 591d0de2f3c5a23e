package posture_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cofferhq/coffer/internal/posture"
	"github.com/cofferhq/coffer/internal/posture/posturetest"
)

// objectsOf lists a snapshot's objects with their type meta, for writing
// them back out.
func objectsOf(s *posture.Snapshot) []posturetest.Object {
	var out []posturetest.Object
	add := func(apiVersion, kind string, items any) {
		b, _ := json.Marshal(items)
		var list []map[string]any
		json.Unmarshal(b, &list)
		for _, o := range list {
			o["apiVersion"], o["kind"] = apiVersion, kind
			out = append(out, o)
		}
	}
	add("v1", "Namespace", s.Namespaces)
	add("v1", "Pod", s.Pods)
	add("apps/v1", "Deployment", s.Deployments)
	add("apps/v1", "ReplicaSet", s.ReplicaSets)
	add("apps/v1", "StatefulSet", s.StatefulSets)
	add("apps/v1", "DaemonSet", s.DaemonSets)
	add("batch/v1", "Job", s.Jobs)
	add("batch/v1", "CronJob", s.CronJobs)
	add("v1", "ReplicationController", s.ReplicationControllers)
	add("v1", "ServiceAccount", s.ServiceAccounts)
	add("v1", "Secret", s.Secrets)
	add("v1", "ConfigMap", s.ConfigMaps)
	add("networking.k8s.io/v1", "Ingress", s.Ingresses)
	add("rbac.authorization.k8s.io/v1", "Role", s.Roles)
	add("rbac.authorization.k8s.io/v1", "ClusterRole", s.ClusterRoles)
	add("rbac.authorization.k8s.io/v1", "RoleBinding", s.RoleBindings)
	add("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", s.ClusterRoleBindings)
	add("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", s.MutatingWebhooks)
	add("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", s.ValidatingWebhooks)
	return out
}

func loadBytes(t *testing.T, b []byte) *posture.Snapshot {
	s, err := posture.LoadFiles(t.Context(), []string{"-"}, posture.FileOptions{Stdin: bytes.NewReader(b), Now: fixedNow, NoBuiltinRoles: true})
	if err != nil {
		t.Fatalf("LoadFiles: %v", err)
	}
	return s
}

func listOf(t *testing.T, s *posture.Snapshot) []byte {
	var b bytes.Buffer
	if err := posturetest.WriteJSONList(&b, objectsOf(s)...); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// FuzzLoad feeds arbitrary input to the loader. Property: it never fails
// on content (only problems are reported), and what it loads, written
// back as a List, loads without problems and writes back byte for byte
// the same: loading is a normalization that is idempotent.
func FuzzLoad(f *testing.F) {
	// Small seeds: the fuzzer minimizes every input that finds new
	// coverage, which takes long for large ones.
	var list, docs, js bytes.Buffer
	posturetest.WriteList(&list, posturetest.SA("a", "s", nil), posturetest.RoleBinding("a", "b", "ClusterRole", "r", posturetest.User("u")))
	posturetest.WriteDocs(&docs, posturetest.NS("a"), posturetest.ClusterRole("r", posturetest.Rule("get", "core", "secrets")))
	posturetest.WriteJSONList(&js, posturetest.Pod("a", "p", posturetest.Spec("s")))
	f.Add(list.Bytes())
	f.Add(docs.Bytes())
	f.Add(js.Bytes())
	f.Add([]byte("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {a: b}\n---\n---\nkind: List\nitems: [{apiVersion: v1, kind: Namespace, metadata: {name: n}}]\n"))
	f.Add([]byte(`{"kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","creationTimestamp":"2020-01-01T00:00:00.5Z"},"spec":{"containers":[{"name":"c","resources":{"limits":{"cpu":"1000m"}}}]}}]}`))
	f.Add([]byte("[1, {\"apiVersion\": \"v1\"}, null]"))
	f.Add([]byte("a: &a [x]\nb: [*a, *a]\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 1<<20 {
			return
		}
		first := loadBytes(t, in)
		out1 := listOf(t, first)
		second := loadBytes(t, out1)
		if len(second.Problems) > 0 {
			t.Fatalf("written snapshot does not load cleanly: %v\n%s", second.Problems, out1)
		}
		if out2 := listOf(t, second); !bytes.Equal(out1, out2) {
			t.Fatalf("not idempotent:\n%s\n---\n%s", out1, out2)
		}
		if first.Objects() != second.Objects() {
			t.Fatalf("%d objects, %d after writing back", first.Objects(), second.Objects())
		}
	})
}

func TestFuzzSeedsAreObjects(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	posturetest.WriteList(&b, posturetest.Scenario(now)...)
	s := loadBytes(t, b.Bytes())
	if s.Objects() != len(posturetest.Scenario(now)) || len(s.Problems) > 0 {
		t.Fatalf("%d objects, problems %v", s.Objects(), s.Problems)
	}
	if !strings.Contains(string(listOf(t, s)), `"kind": "ClusterRoleBinding"`) {
		t.Error("written list lacks kinds")
	}
}
