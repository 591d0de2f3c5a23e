package transit

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"strconv"

	"github.com/cofferhq/coffer/internal/core"
	"github.com/cofferhq/coffer/internal/engine/field"
)

// items returns what a request asks to process: the objects of
// batch_input, or the request itself as the one item. batch reports
// which.
func (e *Engine) items(in *field.Set) (items []*field.Set, batch bool, err error) {
	list, ok, err := in.Objects("batch_input")
	if err != nil {
		return nil, true, err
	}
	if !ok {
		return []*field.Set{in}, false, nil
	}
	if len(list) == 0 {
		return nil, true, core.BadRequest("missing batch input to process")
	}
	if len(list) > e.maxBatch {
		return nil, true, core.BadRequest("batch_input has %d items; the limit is %d per request (mount option %s): split the batch",
			len(list), e.maxBatch, optMaxBatchSize)
	}
	return list, true, nil
}

// status is what every batch result carries besides its payload.
type status struct {
	Error string `json:"error,omitempty"`
	// Reference echoes the item's reference; nil (left out) when the
	// request was not a batch.
	Reference *string `json:"reference,omitempty"`
}

func (s *status) itemStatus() *status { return s }

type result interface{ itemStatus() *status }

// msgInternal stands in the answer for an item that failed for a reason
// the client cannot fix; the log has the error.
const msgInternal = "internal error; the server log has the details"

// answer runs do on every item and builds the response as Vault does.
// A single request answers with its result, or with do's error. A batch
// answers with batch_results in item order, an error replacing the
// result of each item that failed; if any failed the status is 400 (500
// when the server was at fault), or partial_failure_response_code when
// some items succeeded and that is set.
func answer[T any, P interface {
	*T
	result
}](ctx context.Context, log *slog.Logger, r *core.Request, in *field.Set, items []*field.Set, batch bool, do func(it *field.Set) (T, error)) (*core.Response, error) {
	if !batch {
		in.Ignore("reference", "partial_failure_response_code")
		res, err := do(items[0])
		if err != nil {
			return nil, err
		}
		return &core.Response{Data: res, Warnings: in.Warnings(r)}, nil
	}
	out := make([]T, len(items))
	var userErr, internalErr, success bool
	for i, it := range items {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		res, err := do(it)
		st := P(&res).itemStatus()
		var ce *core.Error
		switch {
		case err == nil:
			success = true
		case errors.As(err, &ce) && ce.Status < 500:
			userErr = true
			st.Error = ce.Msg
		default:
			internalErr = true
			st.Error = msgInternal
			log.Error("batch item failed", "path", r.Path, "item", i, "error", err)
		}
		ref, _, _ := it.String("reference")
		st.Reference = &ref
		out[i] = res
	}
	resp := &core.Response{Data: map[string]any{"batch_results": out}}
	if !userErr && !internalErr {
		return resp, nil
	}
	resp.Status = 400
	if internalErr {
		resp.Status = 500
	}
	if code, ok, err := in.Int("partial_failure_response_code"); err == nil && ok && success {
		if code < 1 || code > 599 {
			resp.Warnings = append(resp.Warnings, "invalid HTTP response code override from partial_failure_response_code, reverting to "+strconv.Itoa(resp.Status))
		} else {
			resp.Status = int(code)
		}
	}
	return resp, nil
}

// input returns a base64 field within the mount's size limit. missing is
// the error when it is absent.
func (e *Engine) input(it *field.Set, name, missing string) ([]byte, error) {
	if n := it.EncodedLen(name); n > base64.StdEncoding.EncodedLen(e.maxInput)+2 {
		return nil, core.BadRequest("%s is larger than this mount's limit of %d bytes (mount option %s)", name, e.maxInput, optMaxInputSize)
	}
	b, ok, err := it.Base64(name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, core.BadRequest("%s", missing)
	}
	if len(b) > e.maxInput {
		return nil, core.BadRequest("%s is %d bytes, more than this mount's limit of %d bytes (mount option %s)", name, len(b), e.maxInput, optMaxInputSize)
	}
	return b, nil
}

// versioned returns a "vault:v<n>:..." field within the size any value
// this mount makes could have.
func (e *Engine) versioned(it *field.Set, name, missing string) (string, error) {
	if n := it.EncodedLen(name); n > base64.StdEncoding.EncodedLen(e.maxInput+maxOverhead)+32 {
		return "", core.BadRequest("%s is longer than any this mount produces (mount option %s is %d bytes)", name, optMaxInputSize, e.maxInput)
	}
	s, ok, err := it.String(name)
	if err != nil {
		return "", err
	}
	if !ok || s == "" {
		return "", core.BadRequest("%s", missing)
	}
	return s, nil
}

// maxOverhead bounds what encryption adds to a plaintext (an RSA-4096
// block is the largest).
const maxOverhead = 512

// optionalBase64 returns an optional base64 field (context,
// associated_data), bounded by the input limit.
func (e *Engine) optionalBase64(it *field.Set, name string) ([]byte, error) {
	if !it.Has(name) {
		return nil, nil
	}
	return e.input(it, name, "")
}

// decode returns a request's validated key name and its fields.
func decode(r *core.Request) (string, *field.Set, error) {
	name, err := keyName(r)
	if err != nil {
		return "", nil, err
	}
	in, err := field.Decode(r)
	if err != nil {
		return "", nil, err
	}
	return name, in, nil
}

// writeVersionOf returns the version to encrypt or sign with that the
// optional key_version of in asks for (the latest when absent).
func (k *key) writeVersionOf(in *field.Set) (*version, error) {
	n, err := keyVersion(in)
	if err != nil {
		return nil, err
	}
	return k.writeVersion(n)
}

// keyVersion returns the optional key_version field (0 when absent).
func keyVersion(it *field.Set) (int, error) {
	n, _, err := it.Int("key_version")
	if err != nil {
		return 0, err
	}
	if n < 0 || n > 1<<31-1 {
		return 0, core.BadRequest("key_version %d is out of range", n)
	}
	return int(n), nil
}

// unsupported refuses what Vault takes and coffer does not do: the nonce
// of Vault's convergent version 1 (coffer derives convergent nonces
// itself) and RSA padding other than OAEP.
func unsupported(it *field.Set) error {
	if it.Has("nonce") {
		return core.BadRequest("nonce is not accepted: convergent keys derive their nonce from the plaintext (convergent encryption version %d)", convergentVersion)
	}
	p, _, err := it.String("padding_scheme")
	if err != nil {
		return err
	}
	if p != "" && p != "oaep" {
		return core.BadRequest("padding_scheme %s is not supported: RSA keys encrypt with OAEP (SHA-256)", field.Quote(p))
	}
	return nil
}
