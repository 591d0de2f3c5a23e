package kmsplugin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"

	"github.com/cofferhq/coffer/api"
)

// errKind classifies a failed call to coffer.
type errKind int

const (
	kindUnavailable errKind = iota // no answer: network error, timeout, 5xx
	kindSealed                     // 503: coffer is sealed or not initialised
	kindDenied                     // 403: the token is missing, expired or lacks the policy
	kindRejected                   // another 4xx: coffer refused the input
	kindBadResponse                // 2xx that is not what the wire format promises
	kindNoToken                    // the plugin holds no token yet
)

func (k errKind) String() string {
	switch k {
	case kindUnavailable:
		return "unavailable"
	case kindSealed:
		return "sealed"
	case kindDenied:
		return "denied"
	case kindRejected:
		return "rejected"
	case kindBadResponse:
		return "bad_response"
	default:
		return "no_token"
	}
}

// CofferError is a failed call to coffer. Its message says what failed and
// what to do; it never holds key material.
type CofferError struct {
	Op     string // encrypt, decrypt, login, renew, lookup
	Path   string // the API path called
	Status int    // HTTP status; 0 when there was no answer
	kind   errKind
	Err    error
}

// gaveUp is the error of a caller whose context ended while it waited
// (for what: waiting; empty when it waited for coffer's own answer).
func gaveUp(ctx context.Context, op, path, waiting string) *CofferError {
	err := ctx.Err()
	if waiting != "" {
		err = fmt.Errorf("%w (waiting for %s)", err, waiting)
	}
	return &CofferError{Op: op, Path: path, kind: kindUnavailable, Err: err}
}

func (e *CofferError) Error() string {
	var hint string
	switch e.kind {
	case kindUnavailable:
		hint = "coffer did not answer; check that it runs and that the address and CA are right"
	case kindSealed:
		hint = "coffer is sealed or not initialised; unseal it (coffer operator unseal)"
	case kindDenied:
		hint = "check that the plugin's token is valid and that its policy allows this path (and that the transit key exists)"
	case kindRejected:
		hint = "coffer refused the request"
	case kindBadResponse:
		hint = "unexpected answer from coffer"
	case kindNoToken:
		hint = "no coffer token yet"
	}
	if e.Status != 0 {
		return fmt.Sprintf("coffer %s %s: %v (HTTP %d): %s", e.Op, e.Path, e.Err, e.Status, hint)
	}
	return fmt.Sprintf("coffer %s %s: %v: %s", e.Op, e.Path, e.Err, hint)
}

func (e *CofferError) Unwrap() error { return e.Err }

// code is the gRPC status code for the error.
func (e *CofferError) code() codes.Code {
	switch e.kind {
	case kindUnavailable, kindSealed, kindNoToken:
		return codes.Unavailable
	case kindDenied:
		return codes.PermissionDenied
	case kindRejected:
		if e.Op == "decrypt" {
			return codes.InvalidArgument
		}
		return codes.FailedPrecondition
	default:
		return codes.Internal
	}
}

// call sends one request to coffer and classifies its failure. body is
// sent as is and zeroed afterwards, as is the raw answer once decoded
// into out.
func call(ctx context.Context, c *api.Client, op, path string, body []byte, out any) error {
	return callBatch(ctx, c, op, path, body, out, nil)
}

// callBatch is call for a batch_input request: coffer answers a batch in
// which some items failed with 400 (500 when it was at fault) and the
// per-item results, which are decoded into out when perItem says out
// holds them; any other failure is the whole request's.
func callBatch(ctx context.Context, c *api.Client, op, path string, body []byte, out any, perItem func() bool) error {
	defer clear(body)
	status, raw, err := c.Raw(ctx, http.MethodPut, path, nil, body, nil)
	defer clear(raw)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = fmt.Errorf("%w (%v)", ctxErr, err)
		}
		return &CofferError{Op: op, Path: path, kind: kindUnavailable, Err: err}
	}
	if status >= 300 {
		if perItem != nil && (status == http.StatusBadRequest || status == http.StatusInternalServerError) &&
			json.Unmarshal(raw, out) == nil && perItem() {
			return nil
		}
		var eb struct {
			Errors []string `json:"errors"`
		}
		_ = json.Unmarshal(raw, &eb)
		msg := strings.Join(eb.Errors, "; ")
		if msg == "" {
			msg = http.StatusText(status)
		}
		e := &CofferError{Op: op, Path: path, Status: status, Err: errors.New(oneLine(msg))}
		switch {
		case status == http.StatusServiceUnavailable:
			e.kind = kindSealed
		case status == http.StatusForbidden || status == http.StatusUnauthorized:
			e.kind = kindDenied
		case status >= 500:
			e.kind = kindUnavailable
		default:
			e.kind = kindRejected
		}
		return e
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &CofferError{Op: op, Path: path, Status: status, kind: kindBadResponse, Err: err}
	}
	return nil
}

// transitEncrypt encrypts pt with the latest version of transit key k and
// returns the "vault:v<n>:..." ciphertext and n.
func transitEncrypt(ctx context.Context, c *api.Client, k keyName, pt []byte) (string, int, error) {
	path := k.path("encrypt")
	body := make([]byte, 0, len(`{"plaintext":""}`)+base64.StdEncoding.EncodedLen(len(pt)))
	body = append(body, `{"plaintext":"`...)
	body = base64.StdEncoding.AppendEncode(body, pt)
	body = append(body, `"}`...)
	var resp struct {
		Data struct {
			Ciphertext string `json:"ciphertext"`
			KeyVersion int    `json:"key_version"`
		} `json:"data"`
	}
	if err := call(ctx, c, "encrypt", path, body, &resp); err != nil {
		return "", 0, err
	}
	ct := resp.Data.Ciphertext
	v, err := parseCiphertext([]byte(ct))
	if err != nil {
		return "", 0, &CofferError{Op: "encrypt", Path: path, Status: http.StatusOK, kind: kindBadResponse, Err: err}
	}
	if kv := resp.Data.KeyVersion; kv != 0 && kv != v {
		return "", 0, &CofferError{Op: "encrypt", Path: path, Status: http.StatusOK, kind: kindBadResponse,
			Err: fmt.Errorf("key_version %d but the ciphertext says v%d", kv, v)}
	}
	return ct, v, nil
}

// transitDecrypt opens a transit ciphertext with key k.
func transitDecrypt(ctx context.Context, c *api.Client, k keyName, ct []byte) ([]byte, error) {
	path := k.path("decrypt")
	body, err := json.Marshal(map[string]string{"ciphertext": string(ct)})
	if err != nil {
		return nil, err
	}
	var resp struct {
		Data struct {
			Plaintext []byte `json:"plaintext"` // base64 on the wire, decoded by encoding/json
		} `json:"data"`
	}
	if err := call(ctx, c, "decrypt", path, body, &resp); err != nil {
		return nil, err
	}
	if len(resp.Data.Plaintext) == 0 {
		return nil, &CofferError{Op: "decrypt", Path: path, Status: http.StatusOK, kind: kindBadResponse, Err: errors.New("no plaintext")}
	}
	return resp.Data.Plaintext, nil
}

// msgBatchInternal is what coffer puts in place of a batch item that
// failed through coffer's own fault.
const msgBatchInternal = "internal error; the server log has the details"

// itemError is the error a single request would have given for what
// coffer reported about one batch item.
func itemError(op, path, msg string) error {
	if msg == msgBatchInternal {
		return &CofferError{Op: op, Path: path, Status: http.StatusInternalServerError, kind: kindUnavailable, Err: errors.New(msg)}
	}
	return &CofferError{Op: op, Path: path, Status: http.StatusBadRequest, kind: kindRejected, Err: errors.New(oneLine(msg))}
}

// failAll gives every item the same error.
func failAll[T any](items []*batchItem[T], err error) {
	for _, it := range items {
		it.err = err
	}
}

// transitDecryptItems opens every item's ciphertext with transit key k:
// one plain request for one item, else one batch_input request.
func transitDecryptItems(ctx context.Context, c *api.Client, k keyName, items []*batchItem[[]byte]) {
	if len(items) == 1 {
		items[0].res, items[0].err = transitDecrypt(ctx, c, k, items[0].in)
		return
	}
	path := k.path("decrypt")
	in := make([]map[string]string, len(items))
	for i, it := range items {
		in[i] = map[string]string{"ciphertext": string(it.in)}
	}
	body, err := json.Marshal(map[string]any{"batch_input": in})
	if err != nil {
		failAll(items, err)
		return
	}
	var resp struct {
		Data struct {
			BatchResults []struct {
				Plaintext []byte `json:"plaintext"` // base64 on the wire
				Error     string `json:"error"`
			} `json:"batch_results"`
		} `json:"data"`
	}
	perItem := func() bool { return len(resp.Data.BatchResults) == len(items) }
	err = callBatch(ctx, c, "decrypt", path, body, &resp, perItem)
	if err == nil && !perItem() {
		err = &CofferError{Op: "decrypt", Path: path, Status: http.StatusOK, kind: kindBadResponse,
			Err: fmt.Errorf("%d batch results for %d items", len(resp.Data.BatchResults), len(items))}
	}
	if err != nil {
		for _, r := range resp.Data.BatchResults {
			clear(r.Plaintext)
		}
		failAll(items, err)
		return
	}
	for i, r := range resp.Data.BatchResults {
		switch {
		case r.Error != "":
			clear(r.Plaintext)
			items[i].err = itemError("decrypt", path, r.Error)
		case len(r.Plaintext) == 0:
			items[i].err = &CofferError{Op: "decrypt", Path: path, Status: http.StatusOK, kind: kindBadResponse, Err: errors.New("no plaintext")}
		default:
			items[i].res = r.Plaintext
		}
	}
}

// oneLine flattens a server message for a log line or a healthz string.
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "1 error occurred:\n\t* ", "")
	return strings.Join(strings.Fields(s), " ")
}
