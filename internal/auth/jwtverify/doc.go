// Package jwtverify checks JSON Web Tokens for coffer's kubernetes and jwt
// auth methods: it verifies a compact JWS signature against a key set and
// validates the registered claims.
//
// # Verifying
//
// A Verifier holds a KeySet and the signature algorithms it accepts:
//
//	keys, err := jwtverify.ParsePEMKeys(pemStrings)           // static keys
//	keys := jwtverify.NewRemoteKeySet(jwtverify.RemoteConfig{  // JWKS or OIDC discovery
//		DiscoveryURL: "https://issuer.example", Client: httpClient})
//	v := &jwtverify.Verifier{Keys: keys}                       // all asymmetric algorithms
//	tok, err := v.Verify(ctx, raw)
//	err = tok.Validate(jwtverify.Expected{Issuers: ..., Audiences: ..., Now: now, ClockSkew: time.Minute})
//
// Verify refuses, before any cryptography: a token longer than MaxTokenSize
// (ErrTooLarge); anything that is not a three-part compact JWS with a JSON
// header (ErrMalformed); and an "alg" outside the accepted list
// (ErrAlgorithm). "none" and the HMAC algorithms are never accepted, so an
// RSA public key can never be used as an HMAC secret (the algorithm
// confusion attack): keys are only ever handed to the verifier as
// *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey, each only with
// the algorithms of its type (ES256 with P-256 and so on). Keys embedded
// in the token header ("jwk", "x5c", "jku") are ignored.
//
// The header's "kid" picks the candidate keys; keys without an id (PEM
// keys) are candidates for every token. A RemoteKeySet that has no key
// with the token's kid fetches the key set again, at most once per
// RemoteConfig.MinRefresh, so a flood of tokens with made-up kids cannot
// turn into a flood of fetches; a kid still unknown after that is
// ErrUnknownKey. A signature no candidate verifies is ErrSignature.
//
// # Claims
//
// Token exposes the registered claims (iss, sub, aud, exp, nbf, iat) and
// every claim as decoded JSON with numbers kept as json.Number. Validate
// checks them against Expected. Its errors carry the texts Vault's auth
// methods put on the wire ("invalid audience (aud) claim: ...",
// "invalid not before (nbf) claim: token not yet valid", ...).
//
// Leeways: ClockSkew widens every time check; ExpirationLeeway is added
// to it for exp, and NotBeforeLeeway for nbf. A token without exp under
// RequireTime expires ExpirationLeeway after its iat or nbf (as Vault's
// jwt method does); a token with no time claim at all is refused under
// RequireTime and accepted without it (Kubernetes' legacy secret-based
// service account tokens have none).
package jwtverify
