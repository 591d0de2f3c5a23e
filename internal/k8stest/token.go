package k8stest

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
)

// SignServiceAccountToken signs claims with the control plane's own
// service-account signing key and key id, as the apiserver signs the
// tokens it issues. Tests use it for tokens the TokenRequest API will not
// mint, such as one that expired an hour ago: the apiserver's minimum
// lifetime is ten minutes and it cannot be backdated.
func (c *Cluster) SignServiceAccountToken(claims map[string]any) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(&c.pki.saKey.PublicKey)
	if err != nil {
		return "", err
	}
	// The apiserver's key id: base64url(SHA-256(PKIX DER of the public key)).
	sum := sha256.Sum256(der)
	kid := base64.RawURLEncoding.EncodeToString(sum[:])
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: c.pki.saKey},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		return "", err
	}
	tok, err := josejwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("k8stest: sign token: %w", err)
	}
	return tok, nil
}
