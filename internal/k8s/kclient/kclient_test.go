package kclient

import (
	"net/http"
	"net/http/httptest"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

func TestPath(t *testing.T) {
	for _, c := range []struct{ g, v, ns, r, want string }{
		{"", "v1", "", "namespaces", "/api/v1/namespaces"},
		{"", "v1", "kube-system", "secrets", "/api/v1/namespaces/kube-system/secrets"},
		{"apps", "v1", "a", "deployments", "/apis/apps/v1/namespaces/a/deployments"},
		{"rbac.authorization.k8s.io", "v1", "", "clusterroles", "/apis/rbac.authorization.k8s.io/v1/clusterroles"},
	} {
		if got := Path(c.g, c.v, c.ns, c.r); got != c.want {
			t.Errorf("Path(%q,%q,%q,%q) = %q, want %q", c.g, c.v, c.ns, c.r, got, c.want)
		}
	}
}

// TestListAndErrors: paging parameters reach the server, lists decode,
// and error answers become client-go's StatusError (Status bodies keep
// their reason; other bodies map by HTTP code).
func TestListAndErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/namespaces/a/secrets":
			if r.URL.Query().Get("limit") != "2" || r.URL.Query().Get("continue") != "tok" {
				t.Errorf("query = %v", r.URL.Query())
			}
			w.Write([]byte(`{"kind":"SecretList","metadata":{"continue":"next"},"items":[{"metadata":{"name":"s1"}}]}`))
		case "/api/v1/secrets":
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"secrets is forbidden","reason":"Forbidden","code":403}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte("404 page not found"))
		}
	}))
	defer srv.Close()
	c, err := New(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	var list corev1.SecretList
	if err := c.List(t.Context(), Path("", "v1", "a", "secrets"), metav1.ListOptions{Limit: 2, Continue: "tok"}, &list); err != nil {
		t.Fatal(err)
	}
	if list.Continue != "next" || len(list.Items) != 1 || list.Items[0].Name != "s1" {
		t.Fatalf("list = %+v", list)
	}
	err = c.List(t.Context(), Path("", "v1", "", "secrets"), metav1.ListOptions{}, &list)
	if !apierrors.IsForbidden(err) {
		t.Fatalf("forbidden: %v", err)
	}
	err = c.Get(t.Context(), "/apis/nope/v1/things/x", &list)
	if !apierrors.IsNotFound(err) {
		t.Fatalf("not found: %v", err)
	}
}
