// Package kv is coffer's versioned key/value secrets engine. It speaks the
// KV version 2 API of Vault and OpenBao, so the vault and bao CLIs, the Go
// clients, External Secrets Operator, Vault Agent and the Secrets Store
// CSI provider work against it unchanged.
//
// # Routes
//
// Relative to the mount (say secret/):
//
//	config              read, write: max_versions, cas_required,
//	                    metadata_cas_required, delete_version_after
//	data/<path>         read (?version=N), write {"data":{..},"options":{"cas":N}},
//	                    patch (JSON merge patch of the current version),
//	                    delete (soft-delete the current version); LIST is 405
//	delete/<path>       {"versions":[..]}: soft-delete versions
//	undelete/<path>     {"versions":[..]}: undo soft deletes
//	destroy/<path>      {"versions":[..]}: delete version data for good
//	metadata/<path>     read, write, patch, delete (all versions and the
//	                    metadata), LIST (also of the mount root) with
//	                    OpenBao's after=<key> and limit=<n>
//	subkeys/<path>      read (?version=N&depth=D): the keys, values as null
//
// Responses follow Vault's wire format to the field: a write returns the
// new version's created_time, custom_metadata (null when unset),
// deletion_time ("" or RFC 3339), destroyed and version; a read returns
// {"data":{..},"metadata":{..}}. A missing key or version is
// core.ErrNotFound (404 with no errors); a soft-deleted or destroyed
// version is a 404 that still carries {"data":null,"metadata":{..}}, which
// clients use to tell "deleted" from "missing". Error texts are Vault's
// ("check-and-set parameter did not match the current version", "no data
// provided", ...). Numbers may arrive as JSON numbers or strings, and
// durations as seconds or strings such as "768h".
//
// # Vault behaviour kept on purpose
//
// With delete_version_after set, a live version carries its future
// deletion_time, exactly as Vault and OpenBao report it; a client that
// treats any non-empty deletion_time as deleted (consul-template does)
// will misjudge such a version there too. The effective delay is the
// smaller non-zero of the engine's and the key's setting; a negative
// engine value disables it. Undelete restarts the delay from now.
// max_versions (key, else engine, else 10) prunes the oldest versions on
// write and advances oldest_version. Creating versus updating (for
// policies) is decided by whether the key's current version is live.
//
// # coffer additions
//
// Metadata writes also take expire_after (a hard expiry: each new version
// gets expires_at; from then on it reads as destroyed and a background
// pass deletes its data) and rotation_period (metadata reads show
// next_rotation, the current version's created_time plus the period).
// Metadata reads show each version's last_read. Reads do not write: read
// times are kept in memory and flushed by Run every flush interval (10s)
// and when Run's context ends, so a crash loses at most one interval of
// last_read updates. Engine.Stats counts expired versions and keys past
// their rotation date for metrics. Metadata writes take OpenBao's metadata
// check-and-set: "cas" must equal current_metadata_version when given,
// and is required when metadata_cas_required is set on the key or engine.
//
// # Storage and concurrency
//
// In the mount's storage view, meta/<path> holds a key's metadata (one
// JSON record listing every version) and ver/<path>/<n> version n's data.
// Every change to a key is one storage Txn that writes the version data
// and the metadata together, guarded by a CheckEqual (or CheckAbsent) on
// the metadata record as read; a conflict re-reads and retries. Writers of
// one path also take an in-process lock, so concurrent writers of a key
// queue instead of colliding and each gets its own version. LIST walks
// meta/ only.
//
// # Limits
//
// A path must be non-empty, have no empty, "." or ".." segments and no NUL
// bytes, at most MaxPathSegments segments and MaxPathLen bytes (400
// otherwise). A secret's data, JSON-encoded, may be at most
// DefaultMaxValueSize bytes, or the mount option max_value_size (413
// otherwise). custom_metadata has Vault's limits (64 keys, keys up to 128
// and values up to 512 bytes, printable).
package kv
