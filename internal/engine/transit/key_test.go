package transit

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestMaterialRedacts checks that key material cannot reach a log line,
// an error or a JSON document by accident: every printer shows
// [redacted], and the key record is the only encoding with the bytes.
func TestMaterialRedacts(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef0123456789abcdef")
	m := newMaterial(append([]byte(nil), secret...))
	ec, err := newKey("ec", keySpec{typ: typeECDSAP256}, t0)
	if err != nil {
		t.Fatal(err)
	}
	v := ec.versions[0]
	d := ec.versions[0].signer.(*ecdsa.PrivateKey).D.String()
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "material", m, "version", v, "key", ec)
	js, _ := json.Marshal(struct {
		M material
		V *version
		K *key
	}{m, v, ec})
	for _, out := range []string{
		fmt.Sprint(m), fmt.Sprintf("%v %+v %#v %s %x %q", m, m, m, m, m, m), fmt.Sprintf("%+v %#v %v", v, v, v),
		fmt.Sprintf("%+v %#v %s", ec, ec, ec), logs.String(), string(js), fmt.Errorf("wrapped: %v", m).Error(),
	} {
		if strings.Contains(out, string(secret)) || strings.Contains(out, fmt.Sprintf("%x", secret[:8])) || strings.Contains(out, d) {
			t.Errorf("material leaked: %s", out)
		}
	}
	if !strings.Contains(fmt.Sprint(m), redacted) {
		t.Errorf("material prints as %q", fmt.Sprint(m))
	}
}

// TestRecordRoundTrip checks that a stored key decodes to the same key
// and encodes to the same bytes, for every type.
func TestRecordRoundTrip(t *testing.T) {
	t.Parallel()
	for _, typ := range []keyType{typeAES256GCM96, typeAES128GCM96, typeChaCha20Poly1305, typeED25519, typeECDSAP256, typeECDSAP384, typeECDSAP521, typeRSA2048} {
		t.Run(typ.String(), func(t *testing.T) {
			t.Parallel()
			k, err := newKey("k", keySpec{typ: typ, exportable: true}, t0)
			if err != nil {
				t.Fatal(err)
			}
			if err := k.rotate(t0.Add(1)); err != nil {
				t.Fatal(err)
			}
			raw, err := k.encode()
			if err != nil {
				t.Fatal(err)
			}
			k2, err := decodeKey(raw)
			if err != nil {
				t.Fatal(err)
			}
			raw2, _ := k2.encode()
			if !bytes.Equal(raw, raw2) || k2.latest() != 2 || k2.typ != typ || !k2.exportable {
				t.Fatalf("round trip changed the key: %s vs %s", raw, raw2)
			}
		})
	}
	for _, bad := range []string{`{}`, `{"format":1,"type":"des","versions":[]}`, `{"format":1,"type":"aes256-gcm96","versions":[]}`,
		`{"format":1,"type":"aes256-gcm96","min_decryption_version":1,"versions":[{"version":2,"key":"AA==","hmac_key":"AA=="}]}`, `not json`} {
		if _, err := decodeKey([]byte(bad)); err == nil {
			t.Errorf("decodeKey(%s) accepted it", bad)
		}
	}
}
