package kv

import (
	"strconv"
	"strings"

	"github.com/cofferhq/coffer/internal/core"
	"github.com/cofferhq/coffer/internal/engine/field"
	"github.com/cofferhq/coffer/internal/storage"
)

// Limits on a secret path.
const (
	// MaxPathSegments bounds the number of "/"-separated segments.
	MaxPathSegments = 10_000
	// MaxPathLen bounds a secret path in bytes. It leaves room inside
	// storage.MaxKeyLen for the mount's storage prefix, the engine's own
	// key prefixes and a version number.
	MaxPathLen = storage.MaxKeyLen - 1024
)

// Storage layout inside the mount's view.
const (
	configKey  = "config"
	metaPrefix = "meta/" // meta/<path>: the key's metadata record (keyMeta)
	verPrefix  = "ver/"  // ver/<path>/<n>: version n's data, a JSON object
)

func metaKey(p string) string { return metaPrefix + p }

// versionKey is injective: the last segment is the version, the rest the
// path, so "a" version 1 ("ver/a/1") and "a/1" version 2 ("ver/a/1/2")
// never collide.
func versionKey(p string, v uint64) string {
	return verPrefix + p + "/" + strconv.FormatUint(v, 10)
}

// validatePath checks a secret path taken from a request. Every problem
// is a 400 that says what is wrong; names are fine in messages, values
// never are.
func validatePath(p string) error {
	if p == "" {
		return core.BadRequest("missing path")
	}
	if len(p) > MaxPathLen {
		return core.BadRequest("path is %d bytes, longer than the limit of %d bytes", len(p), MaxPathLen)
	}
	if n := strings.Count(p, "/") + 1; n > MaxPathSegments {
		return core.BadRequest("path has %d segments, more than the limit of %d", n, MaxPathSegments)
	}
	if strings.IndexByte(p, 0) >= 0 {
		return core.BadRequest("path %s contains a NUL byte", field.Quote(p))
	}
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "":
			return core.BadRequest("path %s has an empty segment: remove the leading, trailing or doubled \"/\"", field.Quote(p))
		case ".", "..":
			return core.BadRequest("path %s must not contain a %q segment", field.Quote(p), seg)
		}
	}
	return nil
}

// folderPath turns the path of a LIST request into a storage prefix under
// meta/: "" lists the mount's root, "app" and "app/" list the folder app.
func folderPath(p string) (string, error) {
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return metaPrefix, nil
	}
	if err := validatePath(p); err != nil {
		return "", err
	}
	return metaPrefix + p + "/", nil
}
