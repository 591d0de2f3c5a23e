package transit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cofferhq/coffer/internal/core"
	"github.com/cofferhq/coffer/internal/engine/field"
)

// keysList answers LIST keys: the key names, or 404 when there are none.
func (e *Engine) keysList(ctx context.Context, r *core.Request) (*core.Response, error) {
	names, err := e.store.List(ctx, keyPrefix)
	if err != nil {
		return nil, fmt.Errorf("transit: list keys: %w", err)
	}
	keys := make([]string, 0, len(names))
	for _, n := range names {
		if !strings.HasSuffix(n, "/") {
			keys = append(keys, n)
		}
	}
	if len(keys) == 0 {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: map[string]any{"keys": keys}}, nil
}

// keyCreate answers POST keys/<name>: type, derived,
// convergent_encryption, exportable, allow_plaintext_backup,
// auto_rotate_period. For a key that exists it changes nothing and
// answers its info with Vault's warning.
func (e *Engine) keyCreate(ctx context.Context, r *core.Request) (*core.Response, error) {
	name, in, err := decode(r)
	if err != nil {
		return nil, err
	}
	spec := keySpec{typ: defaultKeyType}
	if s, ok, err := in.String("type"); err != nil {
		return nil, err
	} else if ok && s != "" {
		if spec.typ, err = parseKeyType(s); err != nil {
			return nil, core.BadRequest("%v", err)
		}
	}
	for _, f := range []struct {
		name string
		dst  *bool
	}{{"derived", &spec.derived}, {"convergent_encryption", &spec.convergent}, {"exportable", &spec.exportable}, {"allow_plaintext_backup", &spec.plaintextBackup}} {
		if *f.dst, _, err = in.Bool(f.name); err != nil {
			return nil, err
		}
	}
	if spec.autoRotate, _, err = in.Duration("auto_rotate_period"); err != nil {
		return nil, err
	}
	in.Has("context") // accepted and unused, as in Vault
	if err := spec.check(); err != nil {
		return nil, err
	}
	if k, err := e.loadKey(ctx, name); err == nil { // skip generating material
		return infoResponse(k, nil, append(in.Warnings(r), fmt.Sprintf("key %s already existed", name)))
	}
	k, err := newKey(name, spec, e.now())
	if err != nil {
		return nil, err
	}
	k, created, err := e.createKey(ctx, k)
	if err != nil {
		return nil, err
	}
	warnings := in.Warnings(r)
	if created {
		e.log.Info("created key", "key", name, "type", k.typ.String())
	} else {
		warnings = append(warnings, fmt.Sprintf("key %s already existed", name))
	}
	return infoResponse(k, nil, warnings)
}

// existing returns the request's key, or core.ErrNotFound (a 404).
func (e *Engine) existing(ctx context.Context, r *core.Request) (string, *key, error) {
	name, err := keyName(r)
	if err != nil {
		return "", nil, err
	}
	k, err := e.loadKey(ctx, name)
	if errors.Is(err, errNoKey) {
		return "", nil, core.ErrNotFound
	}
	return name, k, err
}

func infoResponse(k *key, context []byte, warnings []string) (*core.Response, error) {
	info, err := k.info(context)
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: info, Warnings: warnings}, nil
}

// keyRead answers GET keys/<name> (?context= selects the public keys of
// a derived ed25519 key); 404 when there is no such key.
func (e *Engine) keyRead(ctx context.Context, r *core.Request) (*core.Response, error) {
	_, k, err := e.existing(ctx, r)
	if err != nil {
		return nil, err
	}
	in, err := field.Decode(r)
	if err != nil {
		return nil, err
	}
	context, err := e.optionalBase64(in, "context")
	if err != nil {
		return nil, err
	}
	return infoResponse(k, context, nil)
}

// keyDelete answers DELETE keys/<name>, allowed only with
// deletion_allowed set; 404 when there is no such key.
func (e *Engine) keyDelete(ctx context.Context, r *core.Request) (*core.Response, error) {
	name, err := keyName(r)
	if err != nil {
		return nil, err
	}
	err = e.deleteKey(ctx, name, func(k *key) error {
		if !k.deletionAllowed {
			return core.BadRequest("deletion is not allowed for this key: set deletion_allowed=true with keys/%s/config first", name)
		}
		return nil
	})
	if errors.Is(err, errNoKey) {
		return nil, core.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	e.log.Info("deleted key", "key", name)
	return nil, nil
}

// keyRotate answers POST keys/<name>/rotate: a new latest version.
func (e *Engine) keyRotate(ctx context.Context, r *core.Request) (*core.Response, error) {
	name, in, err := decode(r)
	if err != nil {
		return nil, err
	}
	k, err := e.rotateKey(ctx, name, false)
	if errors.Is(err, errNoKey) {
		return nil, core.BadRequest("key not found")
	}
	if err != nil {
		return nil, err
	}
	e.log.Info("rotated key", "key", name, "version", k.latest())
	return infoResponse(k, nil, in.Warnings(r))
}

// keyConfig answers POST keys/<name>/config: min_decryption_version,
// min_encryption_version, deletion_allowed, exportable,
// allow_plaintext_backup, auto_rotate_period. It answers the key's info.
func (e *Engine) keyConfig(ctx context.Context, r *core.Request) (*core.Response, error) {
	name, in, err := decode(r)
	if err != nil {
		return nil, err
	}
	c, err := parseConfig(in)
	if err != nil {
		return nil, err
	}
	var warnings []string
	k, err := e.modifyKey(ctx, name, func(k *key) error {
		var err error
		warnings, err = c.apply(k)
		return err
	})
	if errors.Is(err, errNoKey) {
		return nil, core.BadRequest("no existing key named %s could be found", name)
	}
	if err != nil {
		return nil, err
	}
	return infoResponse(k, nil, append(in.Warnings(r), warnings...))
}

// keyConfigInput is a config write; nil fields are left alone.
type keyConfigInput struct {
	minDecrypt, minEncrypt               *int64
	deletionAllowed, exportable, pBackup *bool
	autoRotate                           *time.Duration
}

func parseConfig(in *field.Set) (*keyConfigInput, error) {
	c := &keyConfigInput{}
	for _, f := range []struct {
		name string
		dst  **int64
	}{{"min_decryption_version", &c.minDecrypt}, {"min_encryption_version", &c.minEncrypt}} {
		n, ok, err := in.Int(f.name)
		if err != nil {
			return nil, err
		}
		if ok {
			*f.dst = &n
		}
	}
	for _, f := range []struct {
		name string
		dst  **bool
	}{{"deletion_allowed", &c.deletionAllowed}, {"exportable", &c.exportable}, {"allow_plaintext_backup", &c.pBackup}} {
		b, ok, err := in.Bool(f.name)
		if err != nil {
			return nil, err
		}
		if ok {
			*f.dst = &b
		}
	}
	d, ok, err := in.Duration("auto_rotate_period")
	if err != nil {
		return nil, err
	}
	if ok {
		if err := (keySpec{autoRotate: d}).check(); err != nil {
			return nil, err
		}
		c.autoRotate = &d
	}
	return c, nil
}

// apply changes k with Vault's rules and returns Vault's warnings.
func (c *keyConfigInput) apply(k *key) ([]string, error) {
	var warnings []string
	if c.minDecrypt != nil {
		n := *c.minDecrypt
		switch {
		case n < 0:
			return nil, core.BadRequest("min decryption version cannot be negative")
		case n == 0:
			n = 1
			warnings = append(warnings, "since Vault 0.3, transit key numbering starts at 1; forcing minimum to 1")
		case n > int64(k.latest()):
			return nil, core.BadRequest("cannot set min decryption version of %d, latest key version is %d", n, k.latest())
		}
		k.minDecrypt = int(n)
	}
	if c.minEncrypt != nil {
		n := *c.minEncrypt
		switch {
		case n < 0:
			return nil, core.BadRequest("min encryption version cannot be negative")
		case n > int64(k.latest()):
			return nil, core.BadRequest("cannot set min encryption version of %d, latest key version is %d", n, k.latest())
		}
		k.minEncrypt = int(n)
	}
	if k.minEncrypt > 0 && k.minEncrypt < k.minDecrypt {
		return nil, core.BadRequest("min encryption version (%d) should not be less than min decryption version (%d)", k.minEncrypt, k.minDecrypt)
	}
	if c.deletionAllowed != nil {
		k.deletionAllowed = *c.deletionAllowed
	}
	if c.exportable != nil {
		if k.exportable && !*c.exportable {
			return nil, core.BadRequest("exportability cannot be disabled after enabling")
		}
		k.exportable = *c.exportable
	}
	if c.pBackup != nil {
		if k.plaintextBackup && !*c.pBackup {
			return nil, core.BadRequest("backup cannot be disabled on a policy that has it enabled")
		}
		k.plaintextBackup = *c.pBackup
	}
	if c.autoRotate != nil {
		k.autoRotate = *c.autoRotate
	}
	return warnings, nil
}
