package cli

import (
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/cofferhq/coffer/internal/k8s/kclient"
	"github.com/cofferhq/coffer/internal/k8s/kmsplugin"
)

type kmsPluginFlags struct {
	socket, mount, key             string
	tokenFile                      string
	authMethod, authPath           string
	role, jwtFile                  string
	timeout                        time.Duration
	metricsAddress                 string
	cacheSize, procs               int
	cacheTTL, refresh, kekLifetime time.Duration
	logLevel, logFormat            string
}

// defaultSAToken is where a pod finds its service-account token.
const defaultSAToken = "/var/run/secrets/kubernetes.io/serviceaccount/token"

func newKMSPluginCmd(e *env) *cobra.Command {
	var f kmsPluginFlags
	cmd := &cobra.Command{
		Use:   "kms-plugin",
		Short: "Run the KMS v2 plugin that encrypts kube-apiserver's Secrets with a coffer transit key",
		Long: `Run the KMS v2 plugin that encrypts kube-apiserver's Secrets with a coffer transit key.

The plugin serves the KMS v2 gRPC API on a unix socket for kube-apiserver's
EncryptionConfiguration. The data keys the apiserver hands it are encrypted
with the transit key; the key id it reports is <mount>/<key>:v<version>, so
rotating the transit key makes the apiserver switch to a new data key.
See docs/kms-plugin.md.

  coffer kms-plugin -address https://coffer:8200 -ca-cert ca.pem \
      -key kube-apiserver -token-file /etc/coffer-kms/token \
      -socket /var/run/kmsplugin/coffer.sock -metrics-address 127.0.0.1:9464
  coffer kms-plugin ... -auth-method kubernetes -role kms-plugin
  coffer kms-plugin rewrite-secrets        after a rotation: store every Secret under the new key id`,
		Args: maxArgs(0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := e.kmsPluginConfig(&f)
			if err != nil {
				return err
			}
			p, err := kmsplugin.New(cfg)
			if err != nil {
				return err
			}
			// GOMAXPROCS from the environment stands unless -procs is given.
			if cmd.Flags().Changed("procs") || e.getenv("GOMAXPROCS") == "" {
				runtime.GOMAXPROCS(f.procs)
			}
			return p.Run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.socket, "socket", "/var/run/kmsplugin/coffer.sock", "unix socket to serve (the EncryptionConfiguration's endpoint)")
	fl.StringVar(&f.mount, "mount", kmsplugin.DefaultMount, "mount path of the transit engine")
	fl.StringVar(&f.key, "key", "", "name of the transit key (required)")
	fl.StringVar(&f.tokenFile, "token-file", "", "file holding the coffer token; re-read when it changes")
	fl.StringVar(&f.authMethod, "auth-method", "", "log in instead of a token file: kubernetes or jwt")
	fl.StringVar(&f.authPath, "auth-path", "", "mount path of the auth method (default: the method name)")
	fl.StringVar(&f.role, "role", "", "role to log in as (with -auth-method)")
	fl.StringVar(&f.jwtFile, "jwt-file", "", "JWT to log in with, read at every login (default for kubernetes: "+defaultSAToken+")")
	fl.DurationVar(&f.timeout, "timeout", kmsplugin.DefaultTimeout, "bound on each call to coffer; keep it under the EncryptionConfiguration's timeout")
	fl.StringVar(&f.metricsAddress, "metrics-address", "", "host:port serving /metrics, /livez and /readyz (default: off)")
	fl.IntVar(&f.cacheSize, "cache-size", kmsplugin.DefaultCacheSize, "data keys and key encryption keys kept in memory for Decrypt during coffer outages (negative: none)")
	fl.DurationVar(&f.cacheTTL, "cache-ttl", kmsplugin.DefaultCacheTTL, "how long a data key or key encryption key is kept in memory")
	fl.DurationVar(&f.kekLifetime, "kek-lifetime", kmsplugin.DefaultKEKLifetime, "how long one local key encryption key encrypts new data keys")
	fl.DurationVar(&f.refresh, "refresh", kmsplugin.DefaultRefresh, "how often to check coffer and the key version between the apiserver's polls")
	fl.IntVar(&f.procs, "procs", 1, "CPUs the plugin runs on at once (GOMAXPROCS; default 1, or $GOMAXPROCS): it waits on sockets, and one CPU serves tens of thousands of calls a second with fewer thread wake-ups than several")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	cmd.AddCommand(newKMSRewriteCmd(e))
	return cmd
}

func (e *env) kmsPluginConfig(f *kmsPluginFlags) (kmsplugin.Config, error) {
	var cfg kmsplugin.Config
	if f.procs < 1 {
		return cfg, usagef("-procs %d: want at least 1", f.procs)
	}
	if f.key == "" {
		return cfg, usagef("-key is required: the name of the transit key that protects the apiserver's data keys")
	}
	var auth kmsplugin.Auth
	switch f.authMethod {
	case "":
		if f.tokenFile == "" {
			return cfg, usagef("give -token-file FILE, or -auth-method kubernetes|jwt with -role")
		}
		if f.role != "" || f.jwtFile != "" || f.authPath != "" {
			return cfg, usagef("-role, -jwt-file and -auth-path need -auth-method")
		}
		auth = kmsplugin.TokenFile{Path: f.tokenFile}
	case "kubernetes", "jwt":
		if f.tokenFile != "" {
			return cfg, usagef("give either -token-file or -auth-method, not both")
		}
		if f.role == "" {
			return cfg, usagef("-auth-method %s needs -role", f.authMethod)
		}
		jwt := f.jwtFile
		if jwt == "" && f.authMethod == "kubernetes" {
			jwt = defaultSAToken
		}
		if jwt == "" {
			return cfg, usagef("-auth-method jwt needs -jwt-file")
		}
		path := f.authPath
		if path == "" {
			path = f.authMethod
		}
		auth = kmsplugin.Login{Method: f.authMethod, Mount: path, Role: f.role, JWTFile: jwt}
	default:
		return cfg, usagef("-auth-method %q: want kubernetes or jwt", f.authMethod)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(f.logLevel)); err != nil {
		return cfg, usagef("-log-level %q: want debug, info, warn or error", f.logLevel)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var logger *slog.Logger
	switch f.logFormat {
	case "text":
		logger = slog.New(slog.NewTextHandler(e.stderr, opts))
	case "json":
		logger = slog.New(slog.NewJSONHandler(e.stderr, opts))
	default:
		return cfg, usagef("-log-format %q: want text or json", f.logFormat)
	}
	client, err := e.client()
	if err != nil {
		return cfg, err
	}
	return kmsplugin.Config{
		Client: client, Auth: auth, Mount: f.mount, Key: f.key, Socket: f.socket,
		MetricsAddress: f.metricsAddress, Timeout: f.timeout, CacheSize: f.cacheSize, CacheTTL: f.cacheTTL,
		KEKLifetime: f.kekLifetime, Refresh: f.refresh, Logger: logger.With("subsystem", "kms-plugin"),
	}, nil
}

func newKMSRewriteCmd(e *env) *cobra.Command {
	var (
		kubeconfig, kubecontext, namespace string
		pageSize                           int64
		qps                                float32
	)
	cmd := &cobra.Command{
		Use:   "rewrite-secrets",
		Short: "Write every Secret back unchanged so the apiserver stores it under the current KMS key id",
		Long: `Write every Secret back unchanged so the apiserver stores it under the current KMS key id.

Run it after rotating the plugin's transit key, once the apiserver uses the new key id
(its Status poll runs every minute). Secrets already under the current key id are not
written again. It needs get, list and update on secrets in every namespace. The
connection comes from -kubeconfig, $KUBECONFIG, ~/.kube/config or the pod's service
account.`,
		Args: maxArgs(0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			rules := clientcmd.NewDefaultClientConfigLoadingRules()
			rules.ExplicitPath = kubeconfig
			rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
				&clientcmd.ConfigOverrides{CurrentContext: kubecontext}).ClientConfig()
			if err != nil {
				return fmt.Errorf("kubernetes connection: %w", err)
			}
			rc.QPS, rc.Burst = qps, int(2*qps)
			kc, err := kclient.New(rc)
			if err != nil {
				return fmt.Errorf("kubernetes client: %w", err)
			}
			start := time.Now()
			logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
			res, err := kmsplugin.RewriteSecrets(cmd.Context(), kc, kmsplugin.RewriteOptions{
				Namespace: namespace, PageSize: pageSize, Logger: logger})
			if perr := e.print(res, []row{{"listed", res.Listed}, {"rewritten", res.Rewritten}, {"gone", res.Gone},
				{"failed", res.Failed}, {"duration", time.Since(start).Round(time.Millisecond).String()}}); perr != nil && err == nil {
				err = perr
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster)")
	fl.StringVar(&kubecontext, "context", "", "kubeconfig context (default: the current one)")
	fl.StringVar(&namespace, "namespace", "", "only this namespace (default: all)")
	fl.Int64Var(&pageSize, "page-size", 100, "Secrets per list call")
	fl.Float32Var(&qps, "qps", 50, "apiserver requests per second")
	return cmd
}
