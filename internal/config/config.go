// Package config reads coffer's server configuration: a YAML file decoded
// strictly (an unknown key is an error naming the key and its line),
// converted into a validated runtime Config that reports every problem at
// once. Flags override the file; the cli package applies them to the
// File before Validate.
//
// Reference (every key, with defaults):
//
//	storage:                      # exactly one backend
//	  bolt:
//	    path: /var/lib/coffer/coffer.db
//	  # inmem: {}                 # in memory; everything is lost on exit
//	listener:
//	  address: 127.0.0.1:8200
//	  tls:
//	    cert_file: /etc/coffer/tls.crt
//	    key_file: /etc/coffer/tls.key
//	    min_version: "1.2"        # "1.2" or "1.3"
//	    # disable: true           # plain HTTP: for loopback testing only
//	  max_request_size: 33554432  # bytes; larger bodies get 413
//	  read_header_timeout: 10s
//	  read_timeout: 30s
//	  write_timeout: 30s
//	  idle_timeout: 5m
//	  shutdown_timeout: 30s       # in-flight requests get this long on SIGTERM
//	log:
//	  level: info                 # debug, info, warn, error
//	  format: text                # text or json
//	telemetry:
//	  unauthenticated_metrics_access: false  # /v1/sys/metrics needs a token unless true
//	api_addr: https://coffer.example.com:8200
//	cluster_name: prod
//	default_lease_ttl: 768h
//	max_lease_ttl: 768h
package config

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// File is the configuration file as written.
type File struct {
	Storage         StorageFile   `yaml:"storage"`
	Listener        ListenerFile  `yaml:"listener"`
	Log             LogFile       `yaml:"log"`
	Telemetry       TelemetryFile `yaml:"telemetry"`
	APIAddr         string        `yaml:"api_addr"`
	ClusterName     string        `yaml:"cluster_name"`
	DefaultLeaseTTL string        `yaml:"default_lease_ttl"`
	MaxLeaseTTL     string        `yaml:"max_lease_ttl"`
}

// StorageFile selects the storage backend.
type StorageFile struct {
	Bolt  *BoltFile  `yaml:"bolt"`
	Inmem *InmemFile `yaml:"inmem"`
}

// BoltFile configures the embedded bbolt backend.
type BoltFile struct {
	Path string `yaml:"path"`
}

// InmemFile configures the in-memory backend (no options).
type InmemFile struct{}

// ListenerFile configures the HTTP listener.
type ListenerFile struct {
	Address           string  `yaml:"address"`
	TLS               TLSFile `yaml:"tls"`
	MaxRequestSize    int64   `yaml:"max_request_size"`
	ReadHeaderTimeout string  `yaml:"read_header_timeout"`
	ReadTimeout       string  `yaml:"read_timeout"`
	WriteTimeout      string  `yaml:"write_timeout"`
	IdleTimeout       string  `yaml:"idle_timeout"`
	ShutdownTimeout   string  `yaml:"shutdown_timeout"`
}

// TLSFile configures TLS on the listener.
type TLSFile struct {
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	MinVersion string `yaml:"min_version"`
	Disable    bool   `yaml:"disable"`
}

// TelemetryFile configures metrics.
type TelemetryFile struct {
	// UnauthenticatedMetricsAccess lets /v1/sys/metrics answer without a token.
	UnauthenticatedMetricsAccess bool `yaml:"unauthenticated_metrics_access"`
}

// LogFile configures logging.
type LogFile struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// Config is the validated runtime configuration.
type Config struct {
	StorageType string // "bolt" or "inmem"
	BoltPath    string

	Address           string
	TLSDisable        bool
	TLSCertFile       string
	TLSKeyFile        string
	TLSMinVersion     uint16
	MaxRequestSize    int64
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	ShutdownTimeout   time.Duration

	LogLevel  string
	LogFormat string

	UnauthenticatedMetrics bool

	APIAddr         string
	ClusterName     string
	DefaultLeaseTTL time.Duration
	MaxLeaseTTL     time.Duration
}

var unknownField = regexp.MustCompile(`line (\d+): field (\S+) not found in type \S+`)

// Parse decodes a configuration file strictly.
func Parse(r io.Reader) (*File, error) {
	var f File
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return &f, nil
		}
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
		msg = unknownField.ReplaceAllString(msg, `line $1: unknown key "$2"`)
		return nil, fmt.Errorf("config: %s", strings.ReplaceAll(msg, "\n  ", "; "))
	}
	var extra any
	if err := dec.Decode(&extra); err == nil {
		return nil, errors.New("config: the file holds more than one YAML document")
	}
	return &f, nil
}

// Load reads and decodes the file at path.
func Load(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer fh.Close()
	f, err := Parse(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Validate checks the file and returns the runtime config, or every
// problem found joined into one error.
func (f *File) Validate() (*Config, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	c := &Config{}

	switch {
	case f.Storage.Bolt != nil && f.Storage.Inmem != nil:
		bad("storage: choose one backend, not both bolt and inmem")
	case f.Storage.Bolt != nil:
		c.StorageType, c.BoltPath = "bolt", f.Storage.Bolt.Path
		if c.BoltPath == "" {
			bad("storage.bolt.path: required (the database file, e.g. /var/lib/coffer/coffer.db)")
		}
	case f.Storage.Inmem != nil:
		c.StorageType = "inmem"
	default:
		bad("storage: no backend configured; add storage.bolt.path")
	}

	l := f.Listener
	c.Address = l.Address
	if c.Address == "" {
		c.Address = "127.0.0.1:8200"
	}
	if _, _, err := net.SplitHostPort(c.Address); err != nil {
		bad("listener.address: %q is not host:port", c.Address)
	}
	c.TLSDisable = l.TLS.Disable
	if !c.TLSDisable {
		c.TLSCertFile, c.TLSKeyFile = l.TLS.CertFile, l.TLS.KeyFile
		if c.TLSCertFile == "" || c.TLSKeyFile == "" {
			bad("listener.tls: cert_file and key_file are required (or set listener.tls.disable: true for plain HTTP on loopback)")
		} else if _, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile); err != nil {
			bad("listener.tls: cannot load the certificate and key: %v", err)
		}
	}
	switch l.TLS.MinVersion {
	case "", "1.2":
		c.TLSMinVersion = tls.VersionTLS12
	case "1.3":
		c.TLSMinVersion = tls.VersionTLS13
	default:
		bad("listener.tls.min_version: %q is not \"1.2\" or \"1.3\"", l.TLS.MinVersion)
	}
	c.MaxRequestSize = l.MaxRequestSize
	if c.MaxRequestSize < 0 {
		bad("listener.max_request_size: must not be negative")
	}
	if c.MaxRequestSize == 0 {
		c.MaxRequestSize = 32 << 20
	}
	dur := func(name, v string, def time.Duration) time.Duration {
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			bad("%s: %q is not a duration like 30s or 5m", name, v)
			return def
		}
		return d
	}
	c.ReadHeaderTimeout = dur("listener.read_header_timeout", l.ReadHeaderTimeout, 10*time.Second)
	c.ReadTimeout = dur("listener.read_timeout", l.ReadTimeout, 30*time.Second)
	c.WriteTimeout = dur("listener.write_timeout", l.WriteTimeout, 30*time.Second)
	c.IdleTimeout = dur("listener.idle_timeout", l.IdleTimeout, 5*time.Minute)
	c.ShutdownTimeout = dur("listener.shutdown_timeout", l.ShutdownTimeout, 30*time.Second)
	c.DefaultLeaseTTL = dur("default_lease_ttl", f.DefaultLeaseTTL, 768*time.Hour)
	c.MaxLeaseTTL = dur("max_lease_ttl", f.MaxLeaseTTL, 768*time.Hour)
	if c.DefaultLeaseTTL > c.MaxLeaseTTL {
		bad("default_lease_ttl (%s) must not exceed max_lease_ttl (%s)", c.DefaultLeaseTTL, c.MaxLeaseTTL)
	}

	c.LogLevel = strings.ToLower(f.Log.Level)
	switch c.LogLevel {
	case "":
		c.LogLevel = "info"
	case "debug", "info", "warn", "error":
	default:
		bad("log.level: %q is not one of debug, info, warn, error", f.Log.Level)
	}
	c.LogFormat = strings.ToLower(f.Log.Format)
	switch c.LogFormat {
	case "":
		c.LogFormat = "text"
	case "text", "json":
	default:
		bad("log.format: %q is not text or json", f.Log.Format)
	}
	c.APIAddr, c.ClusterName = f.APIAddr, f.ClusterName
	c.UnauthenticatedMetrics = f.Telemetry.UnauthenticatedMetricsAccess
	if c.APIAddr == "" {
		scheme := "https"
		if c.TLSDisable {
			scheme = "http"
		}
		c.APIAddr = scheme + "://" + c.Address
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// IsLoopback reports whether addr's host is a loopback address.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
