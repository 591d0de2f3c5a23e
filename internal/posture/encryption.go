package posture

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// EncryptionConfig is what posture reads of an apiserver
// EncryptionConfiguration: which providers apply to which resources, in
// order. Key material is never kept; only the number of keys.
type EncryptionConfig struct {
	Source    string               `json:"source"`
	Resources []EncryptionResource `json:"resources"`
}

// EncryptionResource is one entry of the configuration.
type EncryptionResource struct {
	Resources []string   `json:"resources"`
	Providers []Provider `json:"providers"`
}

// Provider kinds.
const (
	ProviderIdentity  = "identity"
	ProviderAESCBC    = "aescbc"
	ProviderAESGCM    = "aesgcm"
	ProviderSecretbox = "secretbox"
	ProviderKMS       = "kms"
)

// Provider is one provider of an entry.
type Provider struct {
	Kind string `json:"kind"`
	// Name and APIVersion are set for kms ("v1" when not given, as the
	// apiserver defaults).
	Name       string `json:"name,omitempty"`
	APIVersion string `json:"apiVersion,omitempty"`
	// Keys counts the keys of aescbc, aesgcm and secretbox.
	Keys int `json:"keys,omitempty"`
}

// String renders "kms v2 (name)" or "aescbc".
func (p Provider) String() string {
	if p.Kind == ProviderKMS {
		return fmt.Sprintf("kms %s (%s)", p.APIVersion, p.Name)
	}
	return p.Kind
}

// ErrNotEncryptionConfig is returned for a file that is not an
// EncryptionConfiguration.
var ErrNotEncryptionConfig = errors.New("not an EncryptionConfiguration")

type rawEncryption struct {
	Kind      string `json:"kind"`
	Resources []struct {
		Resources []string                     `json:"resources"`
		Providers []map[string]json.RawMessage `json:"providers"`
	} `json:"resources"`
}

// ParseEncryptionConfig reads an EncryptionConfiguration (YAML or JSON).
func ParseEncryptionConfig(data []byte, source string) (*EncryptionConfig, error) {
	var raw rawEncryption
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("encryption config %s: %w", source, err)
	}
	if raw.Kind != "EncryptionConfiguration" {
		return nil, fmt.Errorf("encryption config %s: kind %q: %w", source, raw.Kind, ErrNotEncryptionConfig)
	}
	c := &EncryptionConfig{Source: source}
	for i, r := range raw.Resources {
		er := EncryptionResource{Resources: r.Resources}
		for j, p := range r.Providers {
			if len(p) != 1 {
				return nil, fmt.Errorf("encryption config %s: resources[%d].providers[%d]: want exactly one provider, got %d", source, i, j, len(p))
			}
			for kind, body := range p {
				pr, err := parseProvider(kind, body)
				if err != nil {
					return nil, fmt.Errorf("encryption config %s: resources[%d].providers[%d]: %w", source, i, j, err)
				}
				er.Providers = append(er.Providers, pr)
			}
		}
		c.Resources = append(c.Resources, er)
	}
	return c, nil
}

func parseProvider(kind string, body json.RawMessage) (Provider, error) {
	p := Provider{Kind: kind}
	switch kind {
	case ProviderIdentity:
	case ProviderAESCBC, ProviderAESGCM, ProviderSecretbox:
		var k struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal(body, &k); err != nil {
			return p, fmt.Errorf("%s: %w", kind, err)
		}
		p.Keys = len(k.Keys)
	case ProviderKMS:
		var k struct {
			APIVersion string `json:"apiVersion"`
			Name       string `json:"name"`
		}
		if err := json.Unmarshal(body, &k); err != nil {
			return p, fmt.Errorf("kms: %w", err)
		}
		p.Name, p.APIVersion = k.Name, k.APIVersion
		if p.APIVersion == "" {
			p.APIVersion = "v1"
		}
	default:
		return p, fmt.Errorf("unknown provider %q", kind)
	}
	return p, nil
}

// ForSecrets returns the providers that apply to Secrets: those of the
// first entry listing "secrets", "secrets." (core group), "*." or "*.*".
func (c *EncryptionConfig) ForSecrets() ([]Provider, bool) {
	for _, r := range c.Resources {
		for _, res := range r.Resources {
			switch res {
			case "secrets", "secrets.", "*.", "*.*":
				return r.Providers, true
			}
		}
	}
	return nil, false
}

// APIServerConfig holds the kube-apiserver flags posture reads.
type APIServerConfig struct {
	Source string            `json:"source"`
	Flags  map[string]string `json:"flags"`
}

// apiServerFlags are the flags kept; others may name credentials files.
var apiServerFlags = []string{
	"encryption-provider-config", "anonymous-auth", "authorization-mode",
	"token-auth-file", "enable-admission-plugins", "service-account-lookup",
}

// EncryptionFlag is the flag that names the EncryptionConfiguration.
const EncryptionFlag = "encryption-provider-config"

// ParseAPIServerManifest reads a kube-apiserver static pod manifest (as in
// /etc/kubernetes/manifests/kube-apiserver.yaml) and keeps its flags.
func ParseAPIServerManifest(data []byte, source string) (*APIServerConfig, error) {
	var pod corev1.Pod
	if err := yaml.Unmarshal(data, &pod); err != nil {
		return nil, fmt.Errorf("apiserver manifest %s: %w", source, err)
	}
	c, ok := apiServerFromPod(&pod, source)
	if !ok {
		return nil, fmt.Errorf("apiserver manifest %s: no kube-apiserver container", source)
	}
	return c, nil
}

// apiServerFromPod reads the flags of the pod's kube-apiserver container.
func apiServerFromPod(pod *corev1.Pod, source string) (*APIServerConfig, bool) {
	for _, c := range pod.Spec.Containers {
		argv := append(slices.Clone(c.Command), c.Args...)
		if c.Name != "kube-apiserver" && (len(argv) == 0 || !strings.HasSuffix(argv[0], "kube-apiserver")) {
			continue
		}
		return &APIServerConfig{Source: source, Flags: parseFlags(argv)}, true
	}
	return nil, false
}

func parseFlags(argv []string) map[string]string {
	flags := map[string]string{}
	for i := 0; i < len(argv); i++ {
		a, ok := strings.CutPrefix(argv[i], "--")
		if !ok {
			continue
		}
		name, val, hasVal := strings.Cut(a, "=")
		if !hasVal && i+1 < len(argv) && !strings.HasPrefix(argv[i+1], "-") {
			val = argv[i+1]
			i++
		}
		if slices.Contains(apiServerFlags, name) {
			flags[name] = val
		}
	}
	return flags
}

// isAPIServerPod reports whether a pod is a kube-apiserver static pod.
func isAPIServerPod(p *corev1.Pod) bool {
	return p.Namespace == "kube-system" && (p.Labels["component"] == "kube-apiserver" ||
		bytes.HasPrefix([]byte(p.Name), []byte("kube-apiserver-")))
}
