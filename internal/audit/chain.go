package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Genesis is the prev of the first record of a chain (seq 1): 64 zeros.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// Record types.
const (
	TypeRequest    = "request"
	TypeResponse   = "response"
	TypeCheckpoint = "checkpoint"
)

// checkpointContext is prepended to the bytes a checkpoint signs, so a
// checkpoint signature means nothing anywhere else.
const checkpointContext = "coffer-audit-checkpoint-v1\n"

// sigSuffix is how a checkpoint line ends: `,"sig":"` + base64 of the
// 64-byte signature (88 characters) + `"}}`.
const (
	sigOpen      = `,"sig":"`
	sigClose     = `"}}`
	sigB64Len    = 88
	sigSuffixLen = len(sigOpen) + sigB64Len + len(sigClose)
)

// Head is a position in a device's chain: the seq of a record and the hex
// SHA-256 of its line. The head of a device is its last record written.
type Head struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// lineHash is the hex SHA-256 of a record's line without its newline.
func lineHash(line []byte) string {
	var h [2 * sha256.Size]byte
	return string(appendLineHash(h[:0], line))
}

// appendLineHash appends lineHash(line) to dst.
func appendLineHash(dst, line []byte) []byte {
	sum := sha256.Sum256(line)
	return hex.AppendEncode(dst, sum[:])
}

// appendFramed appends the record line for body (a JSON object from
// render) with seq and prev put in front, and its newline.
func appendFramed[T string | []byte](dst []byte, seq uint64, prev T, body []byte) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"prev":"`...)
	dst = append(dst, prev...)
	dst = append(dst, `",`...)
	dst = append(dst, body[1:]...)
	return append(dst, '\n')
}

// wireCheckpoint is the "checkpoint" object of a checkpoint record; Sig
// is appended by hand after signing.
type wireCheckpoint struct {
	Device string `json:"device"`
	Seq    uint64 `json:"seq"`
	Hash   string `json:"hash"`
	KeyID  string `json:"key_id"`
}

type wireCheckpointEntry struct {
	Time       string         `json:"time"`
	Type       string         `json:"type"`
	Checkpoint wireCheckpoint `json:"checkpoint"`
}

// KeyID names a checkpoint signing key: the first 16 hex digits of the
// SHA-256 of the Ed25519 public key.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// appendCheckpoint appends a signed checkpoint record at seq over the
// chain head (seq-1, prev), and its newline.
func appendCheckpoint(dst []byte, device string, seq uint64, prev string, at time.Time, key ed25519.PrivateKey) ([]byte, error) {
	body, err := marshalCompact(&wireCheckpointEntry{
		Time: at.UTC().Format(timeFormat),
		Type: TypeCheckpoint,
		Checkpoint: wireCheckpoint{
			Device: device,
			Seq:    seq - 1,
			Hash:   prev,
			KeyID:  KeyID(key.Public().(ed25519.PublicKey)),
		},
	})
	if err != nil {
		return nil, err
	}
	start := len(dst)
	dst = appendFramed(dst, seq, prev, body)
	dst = dst[:len(dst)-len("}}\n")] // reopen both objects
	sig := ed25519.Sign(key, signedMessage(dst[start:]))
	dst = append(dst, sigOpen...)
	dst = base64.StdEncoding.AppendEncode(dst, sig)
	dst = append(dst, sigClose...)
	return append(dst, '\n'), nil
}

func signedMessage(prefix []byte) []byte {
	msg := make([]byte, 0, len(checkpointContext)+len(prefix))
	msg = append(msg, checkpointContext...)
	return append(msg, prefix...)
}

// record is what verify and resume need from a line.
type record struct {
	Seq  uint64
	Prev string
	Type string
	Time time.Time
	CP   *wireCheckpoint
	Sig  string
}

// parseLine parses one record line (without its newline). It checks the
// structure every record has (seq, prev, time, type, and for a
// checkpoint its fields) and that the rest is well-formed JSON of the
// expected shape; it does not check the chain or the signature.
func parseLine(line []byte) (record, error) {
	var w struct {
		Seq        *uint64          `json:"seq"`
		Prev       *string          `json:"prev"`
		Time       *string          `json:"time"`
		Type       *string          `json:"type"`
		Auth       *json.RawMessage `json:"auth"`
		Request    *json.RawMessage `json:"request"`
		Response   *json.RawMessage `json:"response"`
		Error      *string          `json:"error"`
		Checkpoint *struct {
			Device *string `json:"device"`
			Seq    *uint64 `json:"seq"`
			Hash   *string `json:"hash"`
			KeyID  *string `json:"key_id"`
			Sig    *string `json:"sig"`
		} `json:"checkpoint"`
	}
	if len(bytes.TrimSpace(line)) == 0 {
		return record{}, errors.New("empty line")
	}
	if line[0] != '{' {
		return record{}, errors.New("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return record{}, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return record{}, errors.New("invalid JSON: data after the record")
	}
	switch {
	case w.Seq == nil:
		return record{}, errors.New(`no "seq"`)
	case *w.Seq == 0:
		return record{}, errors.New(`"seq" is 0`)
	case w.Prev == nil:
		return record{}, errors.New(`no "prev"`)
	case !isHash(*w.Prev):
		return record{}, errors.New(`"prev" is not 64 lowercase hex digits`)
	case w.Time == nil:
		return record{}, errors.New(`no "time"`)
	case w.Type == nil:
		return record{}, errors.New(`no "type"`)
	}
	at, err := time.Parse(time.RFC3339Nano, *w.Time)
	if err != nil {
		return record{}, fmt.Errorf(`"time": %w`, err)
	}
	r := record{Seq: *w.Seq, Prev: *w.Prev, Type: *w.Type, Time: at}
	switch r.Type {
	case TypeRequest, TypeResponse:
		if w.Checkpoint != nil {
			return record{}, fmt.Errorf("a %s record with a checkpoint", r.Type)
		}
		return r, nil
	case TypeCheckpoint:
	default:
		return record{}, fmt.Errorf("unknown record type %q", r.Type)
	}
	c := w.Checkpoint
	switch {
	case c == nil:
		return record{}, errors.New(`checkpoint record without "checkpoint"`)
	case w.Auth != nil || w.Request != nil || w.Response != nil || w.Error != nil:
		return record{}, errors.New("checkpoint record with request fields")
	case c.Device == nil || c.Seq == nil || c.Hash == nil || c.KeyID == nil || c.Sig == nil:
		return record{}, errors.New("checkpoint lacks device, seq, hash, key_id or sig")
	case !isHash(*c.Hash):
		return record{}, errors.New(`checkpoint "hash" is not 64 lowercase hex digits`)
	case len(*c.Sig) != sigB64Len || !bytes.HasSuffix(line, []byte(sigOpen+*c.Sig+sigClose)):
		return record{}, errors.New(`checkpoint does not end in its "sig" of 88 base64 characters`)
	}
	r.CP = &wireCheckpoint{Device: *c.Device, Seq: *c.Seq, Hash: *c.Hash, KeyID: *c.KeyID}
	r.Sig = *c.Sig
	return r, nil
}

// checkSignature reports whether a checkpoint line (already parsed) is
// signed by pub.
func checkSignature(line []byte, sig string, pub ed25519.PublicKey) bool {
	raw, err := base64.StdEncoding.Strict().DecodeString(sig)
	if err != nil || len(raw) != ed25519.SignatureSize || len(pub) != ed25519.PublicKeySize {
		return false
	}
	return ed25519.Verify(pub, signedMessage(line[:len(line)-sigSuffixLen]), raw)
}

func isHash(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return (r < '0' || r > '9') && (r < 'a' || r > 'f')
	}) < 0
}
