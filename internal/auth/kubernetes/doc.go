// Package kubernetes is coffer's kubernetes auth method: workloads log in
// with their service account token and get a coffer token whose policies
// come from a role. It speaks Vault's API for the method, so Vault Agent,
// External Secrets Operator, the Secrets Store CSI provider and
// cert-manager log in unchanged.
//
// # Endpoints (relative to the mount, e.g. auth/kubernetes/)
//
//	config       read, write   how tokens are validated
//	role         list          role names
//	role/<name>  read, write, delete
//	login        write         {"role": ..., "jwt": ...}; no token needed
//
// # Config
//
// A write replaces the whole config, as in Vault. Fields:
//
//	kubernetes_host          required; the apiserver URL
//	kubernetes_ca_cert       PEM; the only CA trusted for the apiserver.
//	                         Unset: the system roots plus, unless
//	                         disable_local_ca_jwt, the pod's own CA file
//	token_reviewer_jwt       bearer for TokenReview (needs
//	                         system:auth-delegator). Unset: the pod's own
//	                         token file unless disable_local_ca_jwt, else
//	                         the logging-in client's JWT. Never read back:
//	                         reads show token_reviewer_jwt_set
//	pem_keys                 PEM public keys or certificates that verify
//	                         token signatures locally
//	issuer                   the expected iss claim
//	disable_iss_validation   default true (Vault's); offline mode always
//	                         checks iss
//	disable_local_ca_jwt     do not read the pod's CA and token files
//	validation               coffer: "tokenreview" (default) or "offline"
//	oidc_discovery_url       coffer: where to discover the issuer's JWKS
//	jwks_url                 coffer: the issuer's JWKS, directly
//	clock_skew_leeway        coffer: leeway on exp, nbf, iat; default 60s,
//	                         -1 for none
//
// use_annotations_as_alias_metadata is refused when true. Every problem of
// a write is reported at once.
//
// # Validation modes
//
// tokenreview (Vault's behaviour): the token is decoded without trusting
// it and checked against the role (audience, exp/nbf, bound names and
// namespaces) so that obviously wrong tokens fail without a call; then the
// apiserver's TokenReview must say authenticated, for the same user and
// uid, with the role's audience among status.audiences (an empty list
// would mean "valid for the apiserver", not for coffer). The review asks
// for [role audience], or the token's own audiences when the role has
// none, as Vault does. TokenReview sees deleted service accounts, pods
// and secrets; unreachable or refusing, the login is denied. When
// pem_keys, jwks_url or oidc_discovery_url is set the signature is also
// checked locally first.
//
// offline (coffer): the signature is verified with pem_keys, the JWKS at
// jwks_url, or the JWKS found by OIDC discovery at oidc_discovery_url or
// the issuer itself (fetched with the configured CA; the reviewer token
// is sent to the apiserver's host only, never elsewhere). The key set is
// cached for an hour and fetched again when a token names an unknown key,
// at most every ten seconds. iss must equal issuer. No call per login,
// but a deleted service account's token stays valid until it expires:
// keep token lifetimes short. Namespace selectors need the API, so a role
// with one is refused in this mode.
//
// Both modes accept projected tokens (the "kubernetes.io" claim block,
// with pod and node references when bound) and legacy secret-based
// tokens ("kubernetes.io/serviceaccount/*" claims, which have no exp).
//
// # Roles
//
//	bound_service_account_names               required; "*" or globs ("app-*")
//	bound_service_account_namespaces          globs; required unless a selector is set
//	bound_service_account_namespace_selector  a LabelSelector in JSON or YAML,
//	                                          e.g. {"matchLabels":{"team":"a"}};
//	                                          tokenreview mode only
//	audience                                  the aud the token must carry
//	alias_name_source                         serviceaccount_uid (default) or
//	                                          serviceaccount_name
//	token_policies, token_ttl, token_max_ttl, token_explicit_max_ttl,
//	token_period, token_num_uses, token_bound_cidrs,
//	token_no_default_policy, token_type       see package param; legacy
//	                                          names (policies, ttl, ...) too
//
// Writes to an existing role change only the fields sent. Reads show
// Vault's defaults for unset fields.
//
// # Login
//
// Errors, as Vault words them: unknown role 400 `invalid role name
// "nope"`; missing fields 400 "missing role"/"missing jwt"; a malformed
// token or one over 64 KiB 400 "invalid jwt: ..."; wrong aud, exp, nbf,
// iat or iss 403 with the claim's message ("invalid audience (aud) claim:
// ..."); 403 "service account name not authorized" and "namespace not
// authorized"; a bad signature, an unknown key, unreachable keys, or a
// TokenReview that refuses or fails 403 "permission denied" (the reason is
// logged, never sent). A login from outside token_bound_cidrs is refused.
//
// The token's metadata: role, service_account_name,
// service_account_namespace, service_account_uid,
// service_account_secret_name (legacy tokens), and pod_name, pod_uid,
// node_name, node_uid when the token is bound to them. Its display name is
// "<mount>-<namespace>-<name>" (kubernetes-eso-external-secrets); its
// entity id is the service account's uid, or with alias_name_source
// serviceaccount_name a stable id derived from the mount and
// "<namespace>/<name>".
package kubernetes
