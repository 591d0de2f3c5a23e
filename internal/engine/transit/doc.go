// Package transit is coffer's encryption-as-a-service engine. It speaks
// the transit API of Vault and OpenBao, so their CLIs and Go clients work
// against it unchanged, and applications encrypt, decrypt, sign and MAC
// without ever holding a key. A policy can allow a principal
// transit/encrypt/<key> and nothing else: it can store secrets it can
// never read back.
//
// # Routes
//
// Relative to the mount (say transit/):
//
//	keys                      LIST: key names (404 when there are none)
//	keys/<name>               write: create (type, derived,
//	                          convergent_encryption, exportable,
//	                          allow_plaintext_backup, auto_rotate_period);
//	                          read (?context= for derived ed25519 public
//	                          keys); delete (only with deletion_allowed)
//	keys/<name>/config        write: min_decryption_version,
//	                          min_encryption_version, deletion_allowed,
//	                          exportable, allow_plaintext_backup,
//	                          auto_rotate_period
//	keys/<name>/rotate        write: add a version
//	encrypt/<name>            plaintext (base64), context, associated_data,
//	                          key_version; creates the key when the caller
//	                          may create it (type, convergent_encryption)
//	decrypt/<name>            ciphertext, context, associated_data
//	rewrap/<name>             ciphertext, context, key_version
//	datakey/plaintext/<name>  bits (128, 256, 512), context: a data key,
//	datakey/wrapped/<name>    encrypted (and for plaintext also in the clear)
//	hmac/<name>[/<hash>]      input, key_version, algorithm
//	sign/<name>[/<hash>]      input, context, key_version, hash_algorithm,
//	                          prehashed, signature_algorithm (pss,
//	                          pkcs1v15), marshaling_algorithm (asn1, jws),
//	                          salt_length (auto, hash, n)
//	verify/<name>[/<hash>]    input with signature or hmac, and sign's options
//	export/<kind>/<name>[/<version>]  encryption-key, signing-key,
//	                          hmac-key (exportable keys only), public-key
//
// encrypt, decrypt, rewrap, hmac, sign and verify take batch_input, a list
// of objects with the single request's fields plus "reference", which is
// echoed. Results come back in order in batch_results; an item that fails
// carries "error" in place of its result, and then the response status is
// 400 (500 if the server was at fault) unless some items succeeded and
// partial_failure_response_code says otherwise: Vault's behaviour.
//
// # Formats
//
// Ciphertexts, signatures and HMACs are "vault:v<version>:<base64>", the
// prefix Vault and OpenBao use, so stored values stay portable. A
// symmetric ciphertext is nonce(12) || AEAD output; an RSA one is an
// OAEP (SHA-256) block. Signatures are ed25519, ECDSA (ASN.1 DER, or
// r||s in base64url with marshaling_algorithm=jws) or RSA PSS (default)
// and PKCS#1 v1.5. Key reads answer Vault's fields: type, keys (version ->
// creation time, or public key info for asymmetric types),
// latest_version, min_decryption_version, min_encryption_version,
// deletion_allowed, exportable, derived, supports_*, auto_rotate_period
// (seconds), ...
//
// Key types: aes256-gcm96 (the default), aes128-gcm96,
// chacha20-poly1305, ed25519, ecdsa-p256/p384/p521, rsa-2048/3072/4096.
// Derived keys (derived=true) need a base64 context on every call; the
// key of a context is HKDF-SHA256 over the version's key with the context
// as info, as in Vault. Convergent keys (convergent_encryption=true, with
// derived) give equal ciphertexts for equal plaintexts under one context
// (Vault's convergent version 3: the nonce is an HMAC of the plaintext
// under a second derived key). coffer also mixes associated data into
// that nonce, so two encryptions that differ only there never share one.
//
// # Limits and errors
//
// A plaintext or input may be at most max_input_size bytes decoded (mount
// option, default DefaultMaxInputSize) and a batch at most max_batch_size
// items (default DefaultMaxBatchSize); past either the answer is a 400
// that names the option. Bad base64, an unknown, too new or too old
// version, a truncated or foreign ciphertext, a key name with a slash:
// each is a 400 with a message saying what was wrong (in Vault's words
// where Vault has them, such as "invalid ciphertext: version is too new"
// and "cipher: message authentication failed"); in a batch, the item's
// error. Errors and logs never carry plaintexts or key material.
//
// # Storage, rotation and memory
//
// Each key is one record, keys/<name> in the mount's storage view (which
// the barrier encrypts), holding every version's material; writes are
// storage transactions guarded by a check on the record they replace.
// Decoded keys are cached in memory: the engine is the only writer of
// its view. Run rotates keys whose auto_rotate_period (at least an hour)
// has passed since their latest version, checking every minute, and when
// its context ends (seal, unmount) zeroes the cached key material and
// refuses further requests.
package transit
