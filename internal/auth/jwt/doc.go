// Package jwt is coffer's jwt auth method: a client presents a JWT from
// an identity provider it trusts (a CI system such as GitHub Actions or
// GitLab, a cloud workload identity, an OIDC provider) and gets a coffer
// token whose policies come from a role. It speaks Vault's API for the
// jwt/oidc method, minus the browser (authorization code) flow; the
// server mounts it under both type names, "jwt" and "oidc".
//
// # Endpoints (relative to the mount, e.g. auth/jwt/)
//
//	config       read, write
//	role         list
//	role/<name>  read, write, delete
//	login        write {"role": ..., "jwt": ...}; no token needed
//
// # Config
//
// A write replaces the whole config, as in Vault; exactly one key source:
//
//	oidc_discovery_url      the issuer URL; its discovery document's issuer
//	                        must equal it, and its jwks_uri gives the keys
//	oidc_discovery_ca_pem   CA for the discovery URL (default system roots)
//	jwks_url                a JWKS URL, directly
//	jwks_ca_pem             CA for jwks_url
//	jwt_validation_pubkeys  PEM public keys or certificates
//	jwt_supported_algs      accepted algorithms; default all of RS256/384/512,
//	                        PS256/384/512, ES256/384/512, EdDSA. "none" and
//	                        HS* are refused
//	bound_issuer            the iss every token must carry (unset: not checked)
//	default_role            the role of a login that names none
//	namespace_in_state      accepted, unused
//
// With a URL source the write fetches the key set once and refuses a
// config whose URL or CA does not work. Remote key sets are cached for an
// hour and fetched again on an unknown kid (at most every ten seconds).
// The OIDC browser-flow settings (oidc_client_id, oidc_client_secret,
// oidc_response_mode, oidc_response_types, provider_config) and jwks_pairs
// are refused unless empty.
//
// # Roles
//
//	role_type               "jwt" (the default; "oidc" is refused)
//	user_claim              required; its value names the user (display name
//	                        "<mount>-<value>", entity id derived from it)
//	user_claim_json_pointer user_claim is a JSON pointer ("/a/b")
//	bound_audiences         aud must contain one; a token with an aud and a
//	                        role without bound_audiences is refused
//	bound_subject           sub must equal it
//	bound_claims            {"claim": value or [values]}; every claim must be
//	                        present with one matching value (any of a list
//	                        claim's values). Claim names starting with "/" are
//	                        JSON pointers
//	bound_claims_type       "string" (exact, the default) or "glob" ("*")
//	claim_mappings          {"claim": "metadata key"}: string, number and
//	                        boolean claims become token metadata, for
//	                        {{identity.metadata.<key>}} in policies; "role" is
//	                        reserved
//	groups_claim            must be present, a string or a list (coffer has no
//	                        identity groups; the value is not used further)
//	clock_skew_leeway       60 by default; on exp, nbf and iat
//	expiration_leeway       150 by default; added for exp, and the life of a
//	                        token without exp after its iat/nbf
//	not_before_leeway       150 by default; added for nbf
//	token_* (and legacy names), see package param
//
// Leeways are seconds or durations; 0 means the default, -1 none. A role
// must have at least one bound constraint (bound_audiences, bound_subject,
// bound_claims or token_bound_cidrs). allowed_redirect_uris and
// oidc_scopes are accepted empty only.
//
// # Login
//
// Errors: no jwt 400 "missing token"; no role and no default_role 400
// "missing role"; unknown role 400 `role "x" could not be found`; a
// malformed token or one over 64 KiB 400 "invalid jwt: ..."; a failed
// signature, unknown key, refused algorithm, or a bad iss/aud/exp/nbf/iat
// 403 "error validating token: ..."; bound claims 403 "error validating
// claims: ..."; a missing user claim 403. Vault answers 400 for the
// validation failures; coffer answers 403, which clients treat alike.
// The token's metadata holds "role" and the claim_mappings targets.
package jwt
