// Package token is coffer's token store: it issues, looks up, renews,
// limits and revokes the service tokens that callers present in
// X-Vault-Token. It is a library with no HTTP; the core maps its errors
// and entries onto the Vault wire format.
//
// # Tokens
//
// A service token is "s." followed by 24 base62 characters (about 143
// random bits), the shape OpenBao issues. Create can also take an explicit
// id (for -dev-root-token-id): any non-empty string up to MaxTokenLen
// bytes. The plaintext token is returned once, by Create, and never
// stored, logged or kept in an Entry: the store keeps only
// HMAC-SHA256(salt, token) in hex, and that hash is Entry.ID and the
// token's storage key. The 32-byte salt is generated on first use and kept
// at "salt". Accessors are random 24-character base62 handles that let an
// operator look up or revoke a token without holding it; they are indexed
// by their own HMAC. Token handling code can hold plaintext in a Token,
// which prints, logs and marshals as "[redacted]".
//
// # Storage layout
//
// All keys live under the storage.Backend handed to New (the core gives it
// a barrier view, so values are encrypted at rest):
//
//	salt                              32-byte HMAC key
//	id/<hash>                         the Entry, JSON
//	accessor/<accessor hash>          the token hash
//	parent/<parent hash>/<hash>       child index, empty value
//	expiry/<hour>/<unix>.<hash>       expiry index, empty value
//	revoke/<hash>                     pending revocation marker
//
// Every change that touches more than one key is a single atomic Txn, and
// every read-modify-write of an entry is a compare-and-set (CheckEqual on
// the bytes read), retried on conflict, so concurrent Use, Renew, Create
// and Revoke calls never lose an update or double-spend a use.
//
// # Lifetimes
//
// A token's TTL is the requested TTL, or Options.DefaultTTL when zero,
// capped so that it never outlives creation + min(ExplicitMaxTTL,
// Options.MaxTTL). A root token (policies include "root") created with no
// TTL, period or explicit max never expires. A periodic token (Period > 0)
// gets Period on creation and on every renewal, for as long as it is
// renewed; only ExplicitMaxTTL bounds its life. Renew grants the increment,
// or the creation TTL when the increment is zero, under the same caps.
//
// Lookup checks expiry on every call against Options.Now, so an expired
// token is refused at once; Run removes expired tokens in the background
// by walking the expiry index, which is ordered by time, so it reads only
// what is due. Lookup also walks the token's ancestors: a token whose
// parent (at any depth) is expired, gone or being revoked is refused too.
//
// Use consumes one use of a token created with NumUses. The call that
// consumes the last use reports exhausted: the token already fails Lookup,
// and the caller revokes it with Revoke once its request is done.
//
// # Revocation
//
// Revoke removes a token and all its descendants. It first marks the token
// (entry flag and revoke/<hash> marker, in one Txn), which makes it and
// its whole subtree fail Lookup immediately; it then deletes descendants
// leaves first, and finally the token, its index rows and the marker in
// one Txn. A crash at any point leaves a marker; ResumeRevocations, which
// Run calls when it starts and periodically for markers left behind,
// finishes the job. RevokeOrphan removes only the token and makes its
// children orphans. Revocation is idempotent: revoking a token that is
// already gone is not an error.
//
// # Errors
//
// Unknown, expired, revoked and exhausted tokens all give ErrNotFound, so
// a caller learns nothing about why a token failed. Storage failures are
// returned wrapped, never turned into ErrNotFound.
package token
