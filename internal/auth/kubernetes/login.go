package kubernetes

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"

	"github.com/cofferhq/coffer/internal/auth/jwtverify"
	"github.com/cofferhq/coffer/internal/auth/param"
	"github.com/cofferhq/coffer/internal/core"
)

// Metadata keys a login puts on its token (policies template on them as
// {{identity.metadata.<key>}}).
const (
	MetaRole       = "role"
	MetaSAName     = "service_account_name"
	MetaSANS       = "service_account_namespace"
	MetaSAUID      = "service_account_uid"
	MetaSecretName = "service_account_secret_name"
	MetaPodName    = "pod_name"
	MetaPodUID     = "pod_uid"
	MetaNodeName   = "node_name"
	MetaNodeUID    = "node_uid"
)

// TokenReview user.extra keys for pod- and node-bound tokens.
const (
	extraPodName  = "authentication.kubernetes.io/pod-name"
	extraPodUID   = "authentication.kubernetes.io/pod-uid"
	extraNodeName = "authentication.kubernetes.io/node-name"
	extraNodeUID  = "authentication.kubernetes.io/node-uid"
)

// Login refusals with Vault's texts.
var (
	errNameNotAuthorized      = core.StatusError(403, "service account name not authorized")
	errNamespaceNotAuthorized = core.StatusError(403, "namespace not authorized")
)

func (b *Backend) login(ctx context.Context, req *core.Request) (*core.Response, error) {
	body, err := param.Parse(req.Body)
	if err != nil {
		return nil, err
	}
	var roleName, raw string
	body.String("role", &roleName)
	body.String("jwt", &raw)
	switch {
	case roleName == "":
		return nil, core.BadRequest("missing role")
	case raw == "":
		return nil, core.BadRequest("missing jwt")
	case len(raw) > jwtverify.MaxTokenSize:
		return nil, core.BadRequest("invalid jwt: %d bytes, the limit is %d", len(raw), jwtverify.MaxTokenSize)
	}
	ro, err := loadRole(ctx, b.store, roleName)
	if err != nil {
		return nil, err
	}
	if ro == nil {
		return nil, core.BadRequest("invalid role name %q", roleName)
	}
	if !ro.RemoteAllowed(req.RemoteAddr) {
		return nil, core.ErrPermissionDenied
	}
	rt, err := b.runtime(ctx)
	if err != nil {
		return nil, err
	}
	if rt == nil {
		return nil, core.BadRequest("the kubernetes auth method at %s is not configured: write %sconfig first", req.MountPath, req.MountPath)
	}
	sa, err := b.authenticate(ctx, rt, ro, raw)
	if err != nil {
		return nil, err
	}
	l := ro.Token.Login()
	l.Metadata = map[string]string{
		MetaRole:       roleName,
		MetaSAName:     sa.Name,
		MetaSANS:       sa.Namespace,
		MetaSAUID:      sa.UID,
		MetaSecretName: sa.SecretName,
	}
	for k, v := range map[string]string{MetaPodName: sa.PodName, MetaPodUID: sa.PodUID, MetaNodeName: sa.NodeName, MetaNodeUID: sa.NodeUID} {
		if v != "" {
			l.Metadata[k] = v
		}
	}
	l.DisplayName = b.display + "-" + sa.Namespace + "-" + sa.Name
	l.EntityID = sa.UID
	if ro.AliasNameSource == AliasSourceName {
		l.EntityID = nameUUID(b.accessor, sa.Namespace+"/"+sa.Name)
	}
	return &core.Response{Login: l}, nil
}

// authenticate checks raw against the config and the role and returns
// the service account it proves.
func (b *Backend) authenticate(ctx context.Context, rt *runtime, ro *role, raw string) (*serviceAccount, error) {
	cfg := rt.cfg
	var tok *jwtverify.Token
	var err error
	if rt.verifier != nil {
		tok, err = rt.verifier.Verify(ctx, raw)
	} else {
		// TokenReview verifies the signature below; these claims only
		// let unbound or expired tokens fail early, as in Vault.
		tok, err = jwtverify.ParseUnverified(raw)
	}
	if err != nil {
		return nil, b.tokenError(err)
	}
	sa, err := serviceAccountFrom(tok)
	if err != nil {
		return nil, core.StatusError(403, "%v", err)
	}
	exp := jwtverify.Expected{Now: b.now(), ClockSkew: DefaultClockSkewLeeway}
	if cfg.ClockSkewLeeway != 0 {
		exp.ClockSkew = cfg.ClockSkewLeeway
	}
	if cfg.Validation == ValidationOffline || (!cfg.DisableISSValidation && cfg.Issuer != "") {
		exp.Issuers = []string{cfg.Issuer}
		if sa.Legacy {
			exp.Issuers = append(exp.Issuers, legacyIssuer)
		}
	}
	if ro.Audience != "" {
		exp.Audiences = []string{ro.Audience}
	}
	if err := tok.Validate(exp); err != nil {
		return nil, core.StatusError(403, "%v", err)
	}
	if sa.UID == "" {
		return nil, core.StatusError(403, "jwt has no service account uid")
	}
	if !(len(ro.Names) == 1 && ro.Names[0] == "*") && !anyGlob(ro.Names, sa.Name) {
		return nil, errNameNotAuthorized
	}
	if err := b.checkNamespace(ctx, rt, ro, sa, raw); err != nil {
		return nil, err
	}
	if cfg.Validation == ValidationTokenReview {
		if err := b.review(ctx, rt, ro, sa, tok, raw); err != nil {
			b.log.Info("login refused by tokenreview", "namespace", sa.Namespace, "serviceaccount", sa.Name, "reason", err)
			return nil, core.ErrPermissionDenied
		}
	}
	return sa, nil
}

// tokenError maps a verification failure: a broken token is the
// client's mistake (400); anything about keys or signatures is a plain
// permission denied, with the detail in the log.
func (b *Backend) tokenError(err error) error {
	if errors.Is(err, jwtverify.ErrMalformed) || errors.Is(err, jwtverify.ErrTooLarge) {
		return core.BadRequest("invalid jwt: %v", err)
	}
	if errors.Is(err, jwtverify.ErrKeysUnavailable) {
		b.log.Warn("login refused: the issuer's keys are unavailable", "error", err)
	} else {
		b.log.Info("login refused: jwt not verified", "error", err)
	}
	return core.ErrPermissionDenied
}

// checkNamespace applies bound_service_account_namespaces, then the
// namespace selector.
func (b *Backend) checkNamespace(ctx context.Context, rt *runtime, ro *role, sa *serviceAccount, raw string) error {
	if len(ro.Namespaces) > 0 && (ro.Namespaces[0] == "*" || anyGlob(ro.Namespaces, sa.Namespace)) {
		return nil
	}
	if ro.selector == nil {
		return errNamespaceNotAuthorized
	}
	if rt.cfg.Validation == ValidationOffline {
		return core.StatusError(403, "namespace not authorized: the role's namespace selector needs the Kubernetes API, "+
			"and this mount validates tokens offline")
	}
	bearer := rt.reviewer()
	if bearer == "" {
		bearer = raw
	}
	labels, err := rt.api.namespaceLabels(ctx, bearer, sa.Namespace)
	if err != nil {
		b.log.Warn("namespace selector: reading the namespace failed", "namespace", sa.Namespace, "error", err)
		return errNamespaceNotAuthorized
	}
	if !ro.selector.matches(labels) {
		return errNamespaceNotAuthorized
	}
	return nil
}

// review asks the apiserver to confirm the token and checks that its
// answer is about the same service account. Pod and node names from the
// answer replace the claims'.
func (b *Backend) review(ctx context.Context, rt *runtime, ro *role, sa *serviceAccount, tok *jwtverify.Token, raw string) error {
	bearer := rt.reviewer()
	if bearer == "" {
		bearer = raw
	}
	auds := tok.Audience
	if ro.Audience != "" {
		auds = []string{ro.Audience}
	}
	rv, err := rt.api.tokenReview(ctx, bearer, raw, auds)
	switch {
	case err != nil:
		b.log.Warn("tokenreview failed", "host", rt.cfg.Host, "error", err)
		return err
	case !rv.Authenticated:
		return fmt.Errorf("not authenticated: %s", rv.Error)
	case rv.User.Username != sa.username():
		return fmt.Errorf("tokenreview user %q does not match the jwt's %q", rv.User.Username, sa.username())
	case rv.User.UID != sa.UID:
		return fmt.Errorf("tokenreview uid %q does not match the jwt's %q", rv.User.UID, sa.UID)
	case ro.Audience != "" && !slices.Contains(rv.Audiences, ro.Audience):
		return fmt.Errorf("tokenreview audiences %q do not include %q", rv.Audiences, ro.Audience)
	}
	for key, dst := range map[string]*string{extraPodName: &sa.PodName, extraPodUID: &sa.PodUID, extraNodeName: &sa.NodeName, extraNodeUID: &sa.NodeUID} {
		if v := rv.User.Extra[key]; len(v) == 1 {
			*dst = v[0]
		}
	}
	return nil
}

// nameUUID derives a stable UUID-shaped id from a mount accessor and an
// alias name, for alias_name_source "serviceaccount_name".
func nameUUID(accessor, name string) string {
	h := sha256.Sum256([]byte("coffer/kubernetes\x00" + accessor + "\x00" + name))
	h[6] = h[6]&0x0f | 0x80 // version 8: custom
	h[8] = h[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}
