// Package barrier is coffer's encrypted storage barrier: everything the
// server stores passes through it, and nothing leaves it unencrypted.
//
// # Keys
//
// Three layers of keys protect the data:
//
//	seal (Shamir shares or an HSM)
//	  -> root key (32 bytes)          encrypts the keyring
//	       -> keyring: data keys, one per term (32 bytes each)
//	            -> every logical entry, under the active term's key
//
// The root key comes from the seal on every unseal and is never stored by
// this package. The keyring holds one data key per term; term 1 is created
// by Initialize and each Rotate adds the next. New records are sealed under
// the newest (active) term. Old terms stay in the keyring so records not
// yet re-encrypted, or restored from a backup, remain readable.
//
// # Physical layout
//
// The barrier owns two areas of the physical storage.Backend:
//
//	barrier/keyring   the keyring, as JSON, sealed under the root key
//	v/<key>           the entry stored at logical <key>, sealed under a data key
//
// Both are records of one format:
//
//	term (4 bytes, big-endian) | version (1 byte, = 1) | nonce (12 bytes) | ciphertext | GCM tag (16 bytes)
//
// The cipher is AES-256-GCM with a random nonce. The term names the key:
// term 0 is the root key (used only for the keyring), terms 1 and up are
// keyring terms. The additional authenticated data is the path: the
// logical key for entries ("app/db", not "v/app/db"), "barrier/keyring"
// for the keyring. A record therefore opens only at the path it was
// written for: copied to another key it fails with ErrDecrypt, as does any
// changed bit (a changed term names another key or none, giving
// ErrDecrypt or ErrUnknownTerm). An empty value gives a 33-byte record.
//
// The keyring JSON is
//
//	{"version":1, "active_term":N, "reencrypted_through":M,
//	 "reencrypt_cursor":{"term":N, "after":"v/..."},        (only mid-pass)
//	 "keys":[{"term":1, "key":"<base64>", "install_time":"<RFC 3339>", "encryptions":C}, ...]}
//
// Keys (entry paths) are not encrypted: List works on the physical store
// and anyone with the raw storage sees which paths exist and how large
// their values are, but not the values.
//
// # Logical storage
//
// An unsealed *Barrier is a storage.Backend on logical keys. Get, Put,
// Delete and List map straight to the physical key "v/"+key. Txn checks
// compare plaintext: the barrier reads and decrypts each checked key,
// compares, and issues one physical Txn that checks the exact ciphertexts
// it read and writes the new records, so the transaction stays atomic. All
// of them fail with ErrSealed while the barrier is sealed.
//
// # Rotation and re-encryption
//
// Rotate writes the keyring with a new term before anything is sealed
// under it. Reencrypt is the background pass that follows: it rewrites
// records of older terms under the active one, each with a
// compare-and-set so that a concurrent writer always wins, saves a cursor
// in the keyring as it goes so a restarted server resumes the pass, and
// finally records the term it re-encrypted to ("reencrypted_through"),
// which NeedsReencrypt reads.
//
// # Nonce limits
//
// Each term's key may seal about 2^32 records before random 96-bit nonces
// risk a collision, which would break GCM's guarantees (NIST SP 800-38D).
// The barrier counts encryptions per term, reports the count through
// KeyStatus and Terms, and logs a warning at 2^31 and 2^32; rotate long
// before. The counts live in memory and are written to the keyring on
// Rotate, every 1000 encryptions and during Reencrypt, so a crash can lose
// up to about 1000 from the count (more if those writes failed, which is
// logged). The keyring itself is re-sealed under the root key on each of
// those writes, far fewer than the limit.
//
// # Key hygiene
//
// Keys in memory are held in a type that prints, logs and marshals as
// "[redacted]". Seal waits for operations in flight, then overwrites every
// data key and the barrier's copy of the root key with zeros. Two copies
// are out of reach: the AES key schedules inside crypto/aes, which Seal
// can only drop for the garbage collector, and whatever buffers a caller
// passed in. The keyring JSON is built by hand into one exactly sized
// buffer, zeroed after use, rather than through encoding/json's pooled
// buffers.
package barrier
