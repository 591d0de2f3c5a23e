package detect

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"hash/crc32"
	"strings"
)

// validator is an offline structural check of a candidate. secret is the
// captured value, prefix the text of the match before it.
type validator func(secret, prefix []byte) bool

// validators maps rule.Validators names to implementations.
var validators = map[string]validator{
	"pem":          func(s, _ []byte) bool { return ValidPrivateKey(s) },
	"jwt":          func(s, _ []byte) bool { return ValidJWT(s) },
	"crc32-base62": func(s, _ []byte) bool { return ValidCRC32Token(s) },
	"base64":       func(s, _ []byte) bool { return decodeB64(s) != nil },
	"base64-pem":   func(s, _ []byte) bool { d := decodeB64(s); return d != nil && ValidPrivateKey(d) },
	"basic-auth":   validBasicAuth,
	"docker-auth":  validBasicAuth,
	"pkcs12":       func(s, _ []byte) bool { return ValidPKCS12(s) },
	"assignment":   genericValue,
	"uri-password": validURIPassword,
}

func decodeB64(s []byte) []byte {
	s = bytes.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if d, err := enc.DecodeString(string(s)); err == nil && len(d) > 0 {
			return d
		}
	}
	return nil
}

// ValidPrivateKey reports whether b holds a PEM (or PEM-like armored)
// private key that parses: PKCS#1, PKCS#8, SEC 1 EC, DSA, encrypted PKCS#8
// or legacy encrypted PEM, OpenSSH, or a PGP secret key block. Escaped
// newlines ("\n" inside a JSON string) and indentation are tolerated.
func ValidPrivateKey(b []byte) bool {
	b = normalizePEM(b)
	if bytes.HasPrefix(b, []byte("-----BEGIN PGP PRIVATE KEY BLOCK-----")) {
		return validPGP(b)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return false
	}
	switch blk.Type {
	case "RSA PRIVATE KEY":
		if blk.Headers["Proc-Type"] != "" {
			return len(blk.Bytes) >= 64 // legacy encrypted: structure is opaque
		}
		_, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
		return err == nil
	case "PRIVATE KEY":
		_, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		return err == nil
	case "EC PRIVATE KEY":
		if blk.Headers["Proc-Type"] != "" {
			return len(blk.Bytes) >= 32
		}
		_, err := x509.ParseECPrivateKey(blk.Bytes)
		return err == nil
	case "DSA PRIVATE KEY":
		var k struct{ Version, P, Q, G, Y, X asn1.RawValue }
		rest, err := asn1.Unmarshal(blk.Bytes, &k)
		return err == nil && len(rest) == 0
	case "ENCRYPTED PRIVATE KEY":
		var k struct {
			Algo struct {
				OID    asn1.ObjectIdentifier
				Params asn1.RawValue `asn1:"optional"`
			}
			Data []byte
		}
		_, err := asn1.Unmarshal(blk.Bytes, &k)
		return err == nil && len(k.Data) >= 16
	case "OPENSSH PRIVATE KEY":
		return validOpenSSH(blk.Bytes)
	}
	return false
}

// normalizePEM undoes JSON/YAML/code escaping: literal \n and \r become
// newlines, indentation is dropped, and a line written as a quoted string
// ("...", '...') keeps only what is inside the quotes.
func normalizePEM(b []byte) []byte {
	if bytes.Contains(b, []byte(`\n`)) {
		b = bytes.ReplaceAll(b, []byte(`\r`), nil)
		b = bytes.ReplaceAll(b, []byte(`\n`), []byte("\n"))
	}
	var out bytes.Buffer
	out.Grow(len(b))
	for l := range bytes.Lines(b) {
		l = bytes.TrimSpace(l)
		if len(l) > 0 && (l[0] == '"' || l[0] == '\'') {
			q := l[0]
			l = l[1:]
			if i := bytes.LastIndexByte(l, q); i >= 0 {
				l = l[:i]
			}
		} else if i := bytes.LastIndexAny(l, "\"'"); i >= 0 && bytes.Count(l, l[i:i+1]) == 1 {
			l = l[:i] // the closing quote of a string that began on an earlier line
		}
		out.Write(bytes.TrimSpace(l))
		out.WriteByte('\n')
	}
	return out.Bytes()
}

type sshReader struct {
	b  []byte
	ok bool
}

func (r *sshReader) u32() uint32 {
	if !r.ok || len(r.b) < 4 {
		r.ok = false
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *sshReader) str() []byte {
	n := r.u32()
	if !r.ok || uint64(n) > uint64(len(r.b)) {
		r.ok = false
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

// validOpenSSH checks the openssh-key-v1 container: magic, cipher, KDF,
// one public key, and for unencrypted keys the matching check integers.
func validOpenSSH(b []byte) bool {
	const magic = "openssh-key-v1\x00"
	if !bytes.HasPrefix(b, []byte(magic)) {
		return false
	}
	r := &sshReader{b: b[len(magic):], ok: true}
	cipher := string(r.str())
	r.str() // kdf name
	r.str() // kdf options
	n := r.u32()
	if !r.ok || n != 1 {
		return false
	}
	pub := r.str()
	priv := r.str()
	if !r.ok || len(pub) < 8 || len(priv) < 8 {
		return false
	}
	if cipher == "none" {
		c1 := binary.BigEndian.Uint32(priv)
		c2 := binary.BigEndian.Uint32(priv[4:])
		return c1 == c2
	}
	return len(priv)%8 == 0
}

// validPGP decodes an ASCII-armored secret key block, checks the CRC-24
// when present and that the first packet is a secret key.
func validPGP(b []byte) bool {
	s := string(b)
	start := strings.Index(s, "-----\n")
	end := strings.Index(s, "-----END PGP PRIVATE KEY BLOCK-----")
	if start < 0 || end < start {
		return false
	}
	body := s[start+6 : end]
	// Armor headers end at the first blank line, if there are any.
	if i := strings.Index(body, "\n\n"); i >= 0 && strings.Contains(body[:i], ": ") {
		body = body[i+2:]
	}
	var data, crc strings.Builder
	for _, l := range strings.Split(body, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "=") && len(l) == 5 {
			crc.WriteString(l[1:])
			continue
		}
		data.WriteString(l)
	}
	raw, err := base64.StdEncoding.DecodeString(data.String())
	if err != nil || len(raw) < 16 {
		return false
	}
	if crc.Len() > 0 {
		want, err := base64.StdEncoding.DecodeString(crc.String())
		if err != nil || len(want) != 3 {
			return false
		}
		got := crc24(raw)
		if byte(got>>16) != want[0] || byte(got>>8) != want[1] || byte(got) != want[2] {
			return false
		}
	}
	h := raw[0]
	if h&0x80 == 0 {
		return false
	}
	var tag byte
	if h&0x40 != 0 {
		tag = h & 0x3f
	} else {
		tag = (h >> 2) & 0x0f
	}
	return tag == 5 || tag == 7
}

func crc24(b []byte) uint32 {
	const init, poly = 0xB704CE, 0x1864CFB
	c := uint32(init)
	for _, x := range b {
		c ^= uint32(x) << 16
		for range 8 {
			c <<= 1
			if c&0x1000000 != 0 {
				c ^= poly
			}
		}
	}
	return c & 0xFFFFFF
}

// ValidJWT reports whether s is three base64url parts whose header is a
// JSON object with an "alg" and whose claims are a JSON object.
func ValidJWT(s []byte) bool {
	parts := bytes.Split(s, []byte("."))
	if len(parts) != 3 {
		return false
	}
	dec := func(p []byte) []byte {
		d, err := base64.RawURLEncoding.DecodeString(string(bytes.TrimRight(p, "=")))
		if err != nil {
			return nil
		}
		return d
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	h := dec(parts[0])
	if h == nil || json.Unmarshal(h, &hdr) != nil || hdr.Alg == "" {
		return false
	}
	var claims map[string]any
	c := dec(parts[1])
	if c == nil || json.Unmarshal(c, &claims) != nil {
		return false
	}
	if strings.EqualFold(hdr.Alg, "none") {
		return true
	}
	return dec(parts[2]) != nil
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// ValidCRC32Token checks the GitHub / npm token checksum: after the
// prefix (up to the last '_'), the last six characters are the base62
// CRC-32 of the characters before them.
func ValidCRC32Token(s []byte) bool {
	i := bytes.LastIndexByte(s, '_')
	body := s[i+1:]
	if len(body) <= 6 {
		return false
	}
	data, sum := body[:len(body)-6], body[len(body)-6:]
	var v uint64
	for _, c := range sum {
		d := strings.IndexByte(base62, c)
		if d < 0 {
			return false
		}
		v = v*62 + uint64(d)
	}
	return v == uint64(crc32.ChecksumIEEE(data))
}

// CRC32Base62 returns the six-character checksum ValidCRC32Token expects
// for body.
func CRC32Base62(body []byte) string {
	v := crc32.ChecksumIEEE(body)
	out := make([]byte, 6)
	for i := 5; i >= 0; i-- {
		out[i] = base62[v%62]
		v /= 62
	}
	return string(out)
}

// validBasicAuth decodes "user:password" and checks the password.
func validBasicAuth(s, _ []byte) bool {
	d := decodeB64(s)
	if d == nil {
		return false
	}
	user, pass, ok := bytes.Cut(d, []byte(":"))
	if !ok || len(user) == 0 || len(pass) < 4 {
		return false
	}
	for _, c := range d {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return !Placeholder(pass) && !bytes.EqualFold(user, pass) && weakOK(pass)
}

func weakOK(v []byte) bool {
	low := bytes.ToLower(v)
	for _, p := range weakPlaceholders {
		if bytes.Contains(low, p) {
			return false
		}
	}
	return true
}

// validURIPassword checks the password of scheme://user:password@host.
func validURIPassword(pass, prefix []byte) bool {
	if len(pass) < 3 || !weakOK(pass) || codeish.Match(pass) {
		return false
	}
	if pass[0] == '$' || pass[0] == '%' || pass[0] == '<' || pass[0] == '[' || pass[0] == '{' {
		return false
	}
	// user:user@ and user:pass@
	if i := bytes.LastIndex(prefix, []byte("//")); i >= 0 {
		user := bytes.TrimSuffix(prefix[i+2:], []byte(":"))
		if bytes.EqualFold(user, pass) {
			return false
		}
	}
	switch strings.ToLower(string(pass)) {
	case "pass", "pwd", "pw", "root", "admin", "guest", "user", "postgres", "mysql", "redis", "rabbitmq", "mongo":
		return false
	}
	return true
}

// ValidPKCS12 reports whether b starts a DER PKCS#12 PFX: a SEQUENCE of
// version 3 and a ContentInfo.
func ValidPKCS12(b []byte) bool {
	var pfx struct {
		Version  int
		AuthSafe struct {
			ContentType asn1.ObjectIdentifier
			Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
		}
		MacData asn1.RawValue `asn1:"optional"`
	}
	if len(b) < 16 || b[0] != 0x30 {
		return false
	}
	_, err := asn1.Unmarshal(b, &pfx)
	if err != nil {
		return false
	}
	data := asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	signed := asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	return pfx.Version == 3 && (pfx.AuthSafe.ContentType.Equal(data) || pfx.AuthSafe.ContentType.Equal(signed))
}
