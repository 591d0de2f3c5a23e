package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseAndValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		yaml    string
		wantErr []string
		check   func(t *testing.T, c *Config)
	}{
		{
			name: "minimal bolt with tls disabled",
			yaml: "storage:\n  bolt:\n    path: /tmp/x.db\nlistener:\n  tls:\n    disable: true\n",
			check: func(t *testing.T, c *Config) {
				if c.StorageType != "bolt" || c.Address != "127.0.0.1:8200" || c.MaxRequestSize != 32<<20 ||
					c.ReadHeaderTimeout != 10*time.Second || c.LogLevel != "info" || c.APIAddr != "http://127.0.0.1:8200" {
					t.Fatalf("defaults: %+v", c)
				}
			},
		},
		{
			name: "inmem and overrides",
			yaml: "storage:\n  inmem: {}\nlistener:\n  address: 127.0.0.1:9\n  max_request_size: 1024\n  write_timeout: 1m\n  tls:\n    disable: true\n    min_version: \"1.3\"\nlog:\n  level: DEBUG\n  format: json\ndefault_lease_ttl: 1h\nmax_lease_ttl: 2h\n",
			check: func(t *testing.T, c *Config) {
				if c.StorageType != "inmem" || c.MaxRequestSize != 1024 || c.WriteTimeout != time.Minute ||
					c.LogLevel != "debug" || c.LogFormat != "json" || c.DefaultLeaseTTL != time.Hour {
					t.Fatalf("got %+v", c)
				}
			},
		},
		{name: "unknown key names key and line", yaml: "storage:\n  bolt:\n    path: x\n    fsync: no\n", wantErr: []string{`line 4: unknown key "fsync"`}},
		{name: "two unknown keys both reported", yaml: "stor: 1\nlisten: 2\n", wantErr: []string{`line 1: unknown key "stor"`, `line 2: unknown key "listen"`}},
		{name: "wrong type", yaml: "listener:\n  max_request_size: big\n", wantErr: []string{"line 2"}},
		{name: "no storage", yaml: "listener:\n  tls:\n    disable: true\n", wantErr: []string{"storage: no backend"}},
		{name: "both storages", yaml: "storage:\n  inmem: {}\n  bolt:\n    path: x\nlistener:\n  tls:\n    disable: true\n", wantErr: []string{"not both"}},
		{
			name:    "every problem at once",
			yaml:    "storage:\n  bolt: {}\nlistener:\n  address: nope\n  idle_timeout: later\n  tls:\n    min_version: \"1.1\"\nlog:\n  level: chatty\n  format: xml\ndefault_lease_ttl: 3h\nmax_lease_ttl: 1h\n",
			wantErr: []string{"storage.bolt.path", "listener.address", "cert_file and key_file", "min_version", "idle_timeout", "log.level", "log.format", "default_lease_ttl"},
		},
		{name: "missing cert files", yaml: "storage:\n  inmem: {}\nlistener:\n  tls:\n    cert_file: /nope.crt\n    key_file: /nope.key\n", wantErr: []string{"cannot load the certificate"}},
		{name: "two documents", yaml: "storage:\n  inmem: {}\n---\nx: 1\n", wantErr: []string{"more than one YAML document"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := Parse(strings.NewReader(tc.yaml))
			var c *Config
			if err == nil {
				c, err = f.Validate()
			}
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				tc.check(t, c)
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{"127.0.0.1:1": true, "[::1]:1": true, "localhost:1": true, "0.0.0.0:1": false, "10.0.0.1:1": false, "junk": false} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v", addr, got)
		}
	}
}

// FuzzParse: any input either fails to parse with an error, or parses
// into a File whose Validate returns a config or an error; never a panic.
// A config that validates is stable: validating it again gives the same.
func FuzzParse(f *testing.F) {
	f.Add("storage:\n  bolt:\n    path: /x\nlistener:\n  tls:\n    disable: true\n")
	f.Add("storage:\n  inmem: {}\n")
	f.Add("a: &a [*a, *a]\n")
	f.Add("listener:\n  max_request_size: -1\n")
	f.Fuzz(func(t *testing.T, in string) {
		fl, err := Parse(strings.NewReader(in))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "config") {
				t.Fatalf("error without context: %v", err)
			}
			return
		}
		c1, err1 := fl.Validate()
		c2, err2 := fl.Validate()
		if (err1 == nil) != (err2 == nil) {
			t.Fatal("Validate is not deterministic")
		}
		if err1 == nil && *c1 != *c2 {
			t.Fatal("Validate gave two configs")
		}
	})
}
