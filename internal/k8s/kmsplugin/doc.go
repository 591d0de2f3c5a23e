// Package kmsplugin is `coffer kms-plugin`: a Kubernetes KMS v2 provider
// (k8s.io/kms) that lets kube-apiserver encrypt Secrets at rest under a
// coffer transit key. docs/kms-plugin.md is the operator's guide.
//
// # Protocol
//
// The apiserver calls three methods over a unix socket:
//
//	Status   healthz "ok" only when an encrypt/decrypt round trip through
//	         coffer works (remembered for Config.HealthTTL, one second after
//	         a failure), else the reason in one line; the key id of the
//	         latest transit key version seen, also while unhealthy
//	Encrypt  the apiserver's 32-byte seed, sealed (AES-256-GCM) under the
//	         plugin's local key encryption key (KEK, kek.go), which coffer's
//	         transit key wraps; the ciphertext is the nonce and the sealed
//	         seed, the key id "<mount>/<key>:v<n>" names the transit version
//	         that wrapped the KEK, and two annotations carry the format
//	         (FormatLocalKEK) and the wrapped KEK. Refused (Unavailable)
//	         exactly when Status would report coffer unhealthy
//	Decrypt  opens the seed under its KEK: the current one or a cached
//	         one without coffer, else after transit/decrypt/<key> unwraps
//	         the KEK (then cached). Ciphertexts of the wrong size, wrapped
//	         KEKs that are not transit ciphertexts ("vault:v<n>:<base64>",
//	         at most 1 KiB) and key ids of another key or another version
//	         than the KEK's are refused without asking coffer (InvalidArgument).
//	         FormatV1 ciphertexts (a transit ciphertext of the seed, written
//	         before local KEKs) go to transit/decrypt/<key> each
//
// A KEK seals seeds until the transit key has a newer version, for
// Config.KEKLifetime or for 2^20 seeds; the next Encrypt makes a new one
// (one transit encrypt; concurrent callers share it). Concurrent Decrypt
// calls that need coffer are coalesced (group commit, batch.go): a call
// that finds no request in flight is sent at once as a plain request;
// calls arriving meanwhile go out together, up to maxBatch, as one
// batch_input request when it returns. Each caller gets its own item's
// result or error; a failure of the whole request is every caller's, the
// error a plain request would give.
//
// Rotating the transit key changes the key id, so the apiserver takes a
// new seed for new writes and treats objects under older ids as stale;
// RewriteSecrets writes every Secret back so it is stored under the new
// id. Old versions keep decrypting as long as the transit key allows.
//
// # Outages
//
// Decrypt answers from the current KEK and from an LRU of recently made
// or unwrapped KEKs and FormatV1 seeds (Config.CacheSize entries, each
// kept Config.CacheTTL from when it was stored), keyed by the SHA-256 of
// the transit ciphertext, so it keeps working while coffer is unreachable
// or sealed. Keys are copied in and out of the cache and zeroed when they
// leave it; they never reach logs, errors or metrics. Every coffer call is
// bounded by Config.Timeout. Failures map to gRPC codes: Unavailable (no
// answer, sealed, no token yet), PermissionDenied, InvalidArgument (coffer
// refused a ciphertext), FailedPrecondition (coffer refused an
// encryption), Internal.
//
// # Authentication
//
// Auth is a TokenFile (re-read when it changes; renewed when renewable)
// or a Login to a kubernetes or jwt auth mount with a role and a JWT file
// (read at every login). The token is renewed at two thirds of its TTL;
// when renewal fails, when renewals shrink towards the max TTL, or when
// coffer refuses the token, a new one is obtained (at most every 10 s on
// refusals; failures back off from 1 s to 30 s).
//
// # Running
//
// Plugin.Run serves the socket (mode 0600, bound under a temporary name
// and renamed into place; a stale socket is replaced, a served one is an
// error), the token manager, a check of coffer every Config.Refresh and,
// with Config.MetricsAddress, /metrics, /livez and /readyz. The first of
// them to fail stops the rest; on return the socket is removed, the
// cache zeroed and the current KEK dropped.
package kmsplugin
