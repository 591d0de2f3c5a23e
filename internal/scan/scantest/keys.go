package scantest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"strings"
	"sync"

	"github.com/cofferhq/coffer/internal/scan/detect"
)

var rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// PEMKey returns a PEM private key of the given variant (0..4: PKCS#1
// RSA, SEC 1 EC, PKCS#8 Ed25519, PKCS#8 EC, encrypted PKCS#8).
func (g *Gen) PEMKey(variant int) string {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(g.rng.Uint32())
	}
	switch variant % 5 {
	case 0:
		return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey())}))
	case 1:
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.MarshalECPrivateKey(k)
		return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	case 2:
		der, _ := x509.MarshalPKCS8PrivateKey(ed25519.NewKeyFromSeed(seed))
		return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	case 3:
		k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		der, _ := x509.MarshalPKCS8PrivateKey(k)
		return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	default:
		type algo struct {
			OID    asn1.ObjectIdentifier
			Params asn1.RawValue
		}
		data := make([]byte, 192)
		g.fill(data)
		der, _ := asn1.Marshal(struct {
			Algo algo
			Data []byte
		}{algo{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}, asn1.NullRawValue}, data})
		return string(pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der}))
	}
}

func (g *Gen) fill(b []byte) {
	for i := range b {
		b[i] = byte(g.rng.Uint32())
	}
}

func sshString(b []byte, s []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// OpenSSHKey returns an unencrypted OpenSSH Ed25519 private key.
func (g *Gen) OpenSSHKey() string {
	seed := make([]byte, ed25519.SeedSize)
	g.fill(seed)
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	pubBlob := sshString(sshString(nil, []byte("ssh-ed25519")), pub)
	check := g.rng.Uint32()
	var sec []byte
	sec = binary.BigEndian.AppendUint32(sec, check)
	sec = binary.BigEndian.AppendUint32(sec, check)
	sec = sshString(sec, []byte("ssh-ed25519"))
	sec = sshString(sec, pub)
	sec = sshString(sec, priv)
	sec = sshString(sec, []byte("dev@laptop"))
	for i := byte(1); len(sec)%8 != 0; i++ {
		sec = append(sec, i)
	}
	b := []byte("openssh-key-v1\x00")
	b = sshString(b, []byte("none"))
	b = sshString(b, []byte("none"))
	b = sshString(b, nil)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = sshString(b, pubBlob)
	b = sshString(b, sec)
	return armor("OPENSSH PRIVATE KEY", b, 70)
}

func armor(typ string, der []byte, width int) string {
	enc := base64.StdEncoding.EncodeToString(der)
	var sb strings.Builder
	fmt.Fprintf(&sb, "-----BEGIN %s-----\n", typ)
	for len(enc) > width {
		sb.WriteString(enc[:width] + "\n")
		enc = enc[width:]
	}
	sb.WriteString(enc + "\n")
	fmt.Fprintf(&sb, "-----END %s-----\n", typ)
	return sb.String()
}

// PGPKey returns an armored block whose first packet is a secret key
// packet, with a correct CRC-24.
func (g *Gen) PGPKey() string {
	body := make([]byte, 150)
	g.fill(body)
	body[0] = 4 // version
	pkt := append([]byte{0xC5, byte(len(body))}, body...)
	enc := base64.StdEncoding.EncodeToString(pkt)
	c := crc24(pkt)
	sum := base64.StdEncoding.EncodeToString([]byte{byte(c >> 16), byte(c >> 8), byte(c)})
	var sb strings.Builder
	sb.WriteString("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n")
	for len(enc) > 64 {
		sb.WriteString(enc[:64] + "\n")
		enc = enc[64:]
	}
	sb.WriteString(enc + "\n=" + sum + "\n-----END PGP PRIVATE KEY BLOCK-----\n")
	return sb.String()
}

func crc24(b []byte) uint32 {
	c := uint32(0xB704CE)
	for _, x := range b {
		c ^= uint32(x) << 16
		for range 8 {
			c <<= 1
			if c&0x1000000 != 0 {
				c ^= 0x1864CFB
			}
		}
	}
	return c & 0xFFFFFF
}

// JWT returns a signed-looking HS256 token with random claims.
func (g *Gen) JWT() string {
	enc := base64.RawURLEncoding
	h := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	p := enc.EncodeToString(fmt.Appendf(nil, `{"sub":"%s","iat":%d,"role":"service"}`, g.Word(12), 1700000000+g.rng.IntN(1e7)))
	sig := make([]byte, 32)
	g.fill(sig)
	return h + "." + p + "." + enc.EncodeToString(sig)
}

// CRC32Token returns prefix + 30 random base62 characters + checksum.
func (g *Gen) CRC32Token(prefix string) string {
	body := make([]byte, 30)
	for i := range body {
		body[i] = printable[g.rng.IntN(len(printable))]
	}
	return prefix + string(body) + detect.CRC32Base62(body)
}

// PKCS12 returns DER bytes with the outer structure of a PFX.
func (g *Gen) PKCS12() []byte {
	inner := make([]byte, 512)
	g.fill(inner)
	octets, _ := asn1.Marshal(inner)
	der, _ := asn1.Marshal(struct {
		Version  int
		AuthSafe struct {
			ContentType asn1.ObjectIdentifier
			Content     asn1.RawValue `asn1:"tag:0,explicit"`
		}
	}{Version: 3, AuthSafe: struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue `asn1:"tag:0,explicit"`
	}{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}, asn1.RawValue{FullBytes: octets}}})
	return der
}

// Word returns n random lowercase letters and digits.
func (g *Gen) Word(n int) string {
	const a = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = a[g.rng.IntN(len(a))]
	}
	return string(b)
}

// Password returns a random password of n characters with at least one
// digit and one letter of each case.
func (g *Gen) Password(n int) string {
	for {
		b := make([]byte, n)
		for i := range b {
			b[i] = printable[g.rng.IntN(len(printable))]
		}
		s := string(b)
		if strings.ContainsAny(s, "0123456789") && strings.ContainsAny(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") &&
			strings.ContainsAny(s, "abcdefghijklmnopqrstuvwxyz") {
			return s
		}
	}
}
