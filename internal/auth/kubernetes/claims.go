package kubernetes

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cofferhq/coffer/internal/auth/jwtverify"
)

// legacyIssuer is the iss of secret-based (pre-1.24 style) service
// account tokens.
const legacyIssuer = "kubernetes/serviceaccount"

// serviceAccount is the identity a service account token claims.
type serviceAccount struct {
	Namespace  string
	Name       string
	UID        string
	SecretName string // legacy tokens only
	PodName    string // projected, pod-bound tokens
	PodUID     string
	NodeName   string // node-bound tokens (kubelet-projected on 1.32+)
	NodeUID    string
	Legacy     bool
}

// errNotServiceAccount: the token carries no service account claims.
var errNotServiceAccount = errors.New("jwt is not a Kubernetes service account token: it has no kubernetes.io claims")

// serviceAccountFrom reads the service account claims of a token:
// the "kubernetes.io" block of projected (TokenRequest) tokens, or the
// flat "kubernetes.io/serviceaccount/..." claims of legacy tokens.
func serviceAccountFrom(t *jwtverify.Token) (*serviceAccount, error) {
	if block, ok := t.Claims["kubernetes.io"]; ok {
		m, ok := block.(map[string]any)
		if !ok {
			return nil, errors.New("jwt claim kubernetes.io is not an object")
		}
		sa := &serviceAccount{}
		var err error
		get := func(dst *string, path ...string) {
			if err != nil {
				return
			}
			*dst, err = stringAt(m, path...)
		}
		get(&sa.Namespace, "namespace")
		get(&sa.Name, "serviceaccount", "name")
		get(&sa.UID, "serviceaccount", "uid")
		get(&sa.PodName, "pod", "name")
		get(&sa.PodUID, "pod", "uid")
		get(&sa.NodeName, "node", "name")
		get(&sa.NodeUID, "node", "uid")
		if err != nil {
			return nil, err
		}
		return sa.check(t.Subject)
	}
	const p = "kubernetes.io/serviceaccount/"
	if _, ok := t.Claims[p+"namespace"]; !ok {
		return nil, errNotServiceAccount
	}
	sa := &serviceAccount{Legacy: true}
	for _, f := range []struct {
		claim string
		dst   *string
	}{
		{"namespace", &sa.Namespace},
		{"service-account.name", &sa.Name},
		{"service-account.uid", &sa.UID},
		{"secret.name", &sa.SecretName},
	} {
		v, ok := t.Claims[p+f.claim]
		if !ok {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("jwt claim %s%s is not a string", p, f.claim)
		}
		*f.dst = s
	}
	return sa.check(t.Subject)
}

// stringAt reads a string at a path of nested objects; a missing path is
// the empty string.
func stringAt(m map[string]any, path ...string) (string, error) {
	var cur any = m
	for i, p := range path {
		obj, ok := cur.(map[string]any)
		if !ok {
			return "", fmt.Errorf("jwt claim kubernetes.io.%s is not an object", strings.Join(path[:i], "."))
		}
		if cur, ok = obj[p]; !ok || cur == nil {
			return "", nil
		}
	}
	s, ok := cur.(string)
	if !ok {
		return "", fmt.Errorf("jwt claim kubernetes.io.%s is not a string", strings.Join(path, "."))
	}
	return s, nil
}

// check requires a namespace and name, and a subject that agrees.
func (sa *serviceAccount) check(sub string) (*serviceAccount, error) {
	if sa.Namespace == "" || sa.Name == "" {
		return nil, errors.New("jwt names no service account namespace and name")
	}
	if sub != "" && sub != sa.username() {
		return nil, fmt.Errorf("jwt subject %q does not match its service account claims", sub)
	}
	return sa, nil
}

// username is the service account's Kubernetes user name.
func (sa *serviceAccount) username() string {
	return "system:serviceaccount:" + sa.Namespace + ":" + sa.Name
}
