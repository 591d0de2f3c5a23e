package kubernetes

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// standIn is a stand-in apiserver for the faults a real one does not
// produce on demand (an audience-unaware "authenticated", a user that
// differs from the token's claims, a 500). The integration tests run the
// same logins against a real kube-apiserver.
type standIn struct {
	*httptest.Server
	caPEM string

	mu      sync.Mutex // guards the fields below
	answer  func(token string, audiences []string) map[string]any
	labels  map[string]map[string]string
	reviews []reviewCall
}

type reviewCall struct {
	bearer    string
	token     string
	audiences []string
}

func newStandIn(t *testing.T) *standIn {
	s := &standIn{labels: map[string]map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /apis/authentication.k8s.io/v1/tokenreviews", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Spec struct {
				Token     string   `json:"token"`
				Audiences []string `json:"audiences"`
			} `json:"spec"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		s.mu.Lock()
		s.reviews = append(s.reviews, reviewCall{strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), in.Spec.Token, in.Spec.Audiences})
		answer := s.answer
		s.mu.Unlock()
		status := answer(in.Spec.Token, in.Spec.Audiences)
		if status == nil {
			w.WriteHeader(500)
			_, _ = w.Write([]byte(`{"kind":"Status","message":"etcd is on fire"}`))
			return
		}
		w.WriteHeader(201)
		_ = json.NewEncoder(w).Encode(map[string]any{"kind": "TokenReview", "status": status})
	})
	mux.HandleFunc("GET /api/v1/namespaces/{ns}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		l, ok := s.labels[r.PathValue("ns")]
		s.mu.Unlock()
		if !ok {
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"kind":"Status","message":"namespaces not found"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"metadata": map[string]any{"name": r.PathValue("ns"), "labels": l}})
	})
	s.Server = httptest.NewTLSServer(mux)
	t.Cleanup(s.Close)
	s.caPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}))
	return s
}

func (s *standIn) setAnswer(f func(token string, audiences []string) map[string]any) {
	s.mu.Lock()
	s.answer = f
	s.mu.Unlock()
}

func (s *standIn) calls() []reviewCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]reviewCall(nil), s.reviews...)
}

// authenticated answers as the apiserver does for a valid token of
// ns/name with uid, echoing the requested audiences.
func authenticated(ns, name, uid string, extra map[string][]string) func(string, []string) map[string]any {
	return func(_ string, auds []string) map[string]any {
		return map[string]any{
			"authenticated": true,
			"user": map[string]any{"username": "system:serviceaccount:" + ns + ":" + name, "uid": uid,
				"groups": []string{"system:serviceaccounts"}, "extra": extra},
			"audiences": auds,
		}
	}
}

func TestLoginTokenReview(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := newCluster(t) // signs the tokens; not trusted by the mount
	api := newStandIn(t)
	h.write("config", map[string]any{"kubernetes_host": api.URL, "kubernetes_ca_cert": api.caPEM})
	h.write("role/eso", map[string]any{"bound_service_account_names": "external-secrets",
		"bound_service_account_namespaces": "eso", "audience": "vault", "token_policies": "app-read"})
	h.write("role/noaud", map[string]any{"bound_service_account_names": "external-secrets", "bound_service_account_namespaces": "eso"})
	tok := c.token(t, sa{ns: "eso", name: "external-secrets", uid: "1111-2222", aud: []string{"vault", "extra"}})

	api.setAnswer(authenticated("eso", "external-secrets", "1111-2222", map[string][]string{
		"authentication.kubernetes.io/pod-name": {"eso-5c9d"}, "authentication.kubernetes.io/pod-uid": {"p-1"}}))
	l, err := h.login("eso", tok)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if l.Metadata["pod_name"] != "eso-5c9d" || l.Metadata["pod_uid"] != "p-1" || l.Metadata["service_account_uid"] != "1111-2222" {
		t.Fatalf("metadata %v", l.Metadata)
	}
	// What coffer sent: the client's own JWT as bearer (no reviewer JWT
	// configured, no local token file), the role's audience.
	calls := api.calls()
	if len(calls) != 1 || calls[0].bearer != tok || calls[0].token != tok || strings.Join(calls[0].audiences, ",") != "vault" {
		t.Fatalf("tokenreview calls %+v", calls)
	}
	// Without a role audience, the token's own audiences are asked for.
	if _, err := h.login("noaud", tok); err != nil {
		t.Fatal(err)
	}
	if got := api.calls()[1].audiences; strings.Join(got, ",") != "vault,extra" {
		t.Fatalf("audiences without a role audience = %v", got)
	}

	// Refusals: each is a plain "permission denied".
	for _, tc := range []struct {
		name   string
		answer func(string, []string) map[string]any
	}{
		{"unauthenticated", func(string, []string) map[string]any {
			return map[string]any{"authenticated": false, "error": "service account deleted"}
		}},
		{"audience-unaware authenticated", func(string, []string) map[string]any {
			a := authenticated("eso", "external-secrets", "1111-2222", nil)("", nil)
			a["audiences"] = []string{}
			return a
		}},
		{"another user", authenticated("eso", "admin", "1111-2222", nil)},
		{"another uid", authenticated("eso", "external-secrets", "9999", nil)},
		{"apiserver error", func(string, []string) map[string]any { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api.setAnswer(tc.answer)
			_, err := h.login("eso", tok)
			wantErr(t, err, 403, "permission denied")
		})
	}
	// Tokens that fail the local checks never reach the apiserver.
	before := len(api.calls())
	_, err = h.login("eso", c.token(t, sa{ns: "default", name: "external-secrets", aud: []string{"vault"}}))
	wantErr(t, err, 403, "namespace not authorized")
	_, err = h.login("eso", c.token(t, sa{ns: "eso", name: "external-secrets", aud: []string{"nope"}}))
	wantErr(t, err, 403, "invalid audience (aud) claim")
	if len(api.calls()) != before {
		t.Fatal("a locally refused token was sent to TokenReview")
	}

	// Unreachable apiserver.
	api.Close()
	_, err = h.login("eso", tok)
	wantErr(t, err, 403, "permission denied")
}

func TestLoginReviewerJWT(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := newCluster(t)
	api := newStandIn(t)
	api.setAnswer(authenticated("eso", "external-secrets", "u1", nil))
	h.write("config", map[string]any{"kubernetes_host": api.URL, "kubernetes_ca_cert": api.caPEM, "token_reviewer_jwt": "reviewer-token"})
	h.write("role/r", map[string]any{"bound_service_account_names": "external-secrets", "bound_service_account_namespaces": "eso"})
	if _, err := h.login("r", c.token(t, sa{ns: "eso", name: "external-secrets", uid: "u1"})); err != nil {
		t.Fatal(err)
	}
	if got := api.calls()[0].bearer; got != "reviewer-token" {
		t.Fatalf("bearer %q, want the reviewer JWT", got)
	}
}

func TestLoginNamespaceSelector(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := newCluster(t)
	api := newStandIn(t)
	api.labels["team-a"] = map[string]string{"team": "a"}
	api.labels["team-b"] = map[string]string{"team": "b"}
	h.write("config", map[string]any{"kubernetes_host": api.URL, "kubernetes_ca_cert": api.caPEM})
	h.write("role/sel", map[string]any{"bound_service_account_names": "*",
		"bound_service_account_namespace_selector": `{"matchLabels":{"team":"a"}}`})
	api.setAnswer(authenticated("team-a", "app", "uid-team-a-app", nil))
	if _, err := h.login("sel", c.token(t, sa{ns: "team-a", name: "app"})); err != nil {
		t.Fatalf("team-a: %v", err)
	}
	_, err := h.login("sel", c.token(t, sa{ns: "team-b", name: "app"}))
	wantErr(t, err, 403, "namespace not authorized")
	_, err = h.login("sel", c.token(t, sa{ns: "gone", name: "app"}))
	wantErr(t, err, 403, "namespace not authorized")
}
