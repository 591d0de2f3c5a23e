// Package kclient reads and writes Kubernetes objects through the REST
// API as JSON, with client-go's transport (kubeconfig auth, TLS, exec
// plugins) but without its typed clientset. The clientset's scheme
// registers every API group when the program starts, and since coffer is
// one binary that cost landed on `coffer server` too: about 30 ms more to
// start and 25 MB more resident memory. Callers decode into the k8s.io/api
// types they need.
package kclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
)

// maxBody bounds one response: a page of 500 large objects fits easily.
const maxBody = 256 << 20

// Client talks to one apiserver.
type Client struct {
	hc      *http.Client
	base    *url.URL
	limiter flowcontrol.RateLimiter // nil: no client-side limit
}

// New returns a client for cfg (from clientcmd or rest.InClusterConfig).
func New(cfg *rest.Config) (*Client, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	host := cfg.Host
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	base, err := url.Parse(strings.TrimSuffix(host, "/") + strings.TrimSuffix(cfg.APIPath, "/"))
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: host %q: %w", cfg.Host, err)
	}
	c := &Client{hc: hc, base: base}
	if cfg.QPS > 0 {
		burst := max(cfg.Burst, 1)
		c.limiter = flowcontrol.NewTokenBucketRateLimiter(cfg.QPS, burst)
	}
	return c, nil
}

// Path is the collection path of resource in group/version, within
// namespace ns when ns is not empty: Path("apps", "v1", "default",
// "deployments") is /apis/apps/v1/namespaces/default/deployments.
func Path(group, version, ns, resource string) string {
	p := "/apis/" + group + "/" + version
	if group == "" {
		p = "/api/" + version
	}
	if ns != "" {
		p += "/namespaces/" + url.PathEscape(ns)
	}
	return p + "/" + resource
}

// List gets one page of the collection at path into out (a *XList).
func (c *Client) List(ctx context.Context, path string, opt metav1.ListOptions, out any) error {
	q := url.Values{}
	if opt.Limit > 0 {
		q.Set("limit", strconv.FormatInt(opt.Limit, 10))
	}
	if opt.Continue != "" {
		q.Set("continue", opt.Continue)
	}
	if opt.LabelSelector != "" {
		q.Set("labelSelector", opt.LabelSelector)
	}
	if opt.FieldSelector != "" {
		q.Set("fieldSelector", opt.FieldSelector)
	}
	return c.do(ctx, http.MethodGet, path, q, nil, out)
}

// Get reads the object at path (a collection path plus "/" + name).
func (c *Client) Get(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, nil, out)
}

// Update replaces the object at path with obj (as fieldManager, when
// set) and decodes the stored object into out (which may be nil).
func (c *Client) Update(ctx context.Context, path, fieldManager string, obj, out any) error {
	var q url.Values
	if fieldManager != "" {
		q = url.Values{"fieldManager": {fieldManager}}
	}
	return c.do(ctx, http.MethodPut, path, q, obj, out)
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	if c.limiter != nil {
		if err := c.limiter.Wait(ctx); err != nil {
			return err
		}
	}
	u := *c.base
	u.Path += path
	u.RawQuery = q.Encode()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			return nil
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(out); err != nil {
			return fmt.Errorf("%s %s: decode response: %w", method, path, err)
		}
		return nil
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return statusError(resp.StatusCode, method, path, raw)
}

// statusError turns an error answer into the *apierrors.StatusError that
// client-go would return, so apierrors.IsForbidden and friends work.
func statusError(code int, method, path string, raw []byte) error {
	var st metav1.Status
	if json.Unmarshal(raw, &st) == nil && st.Kind == "Status" {
		if st.Code == 0 {
			st.Code = int32(code)
		}
		return &apierrors.StatusError{ErrStatus: st}
	}
	verb := strings.ToLower(method)
	return apierrors.NewGenericServerResponse(code, verb, schema.GroupResource{}, path, strings.TrimSpace(string(raw)), 0, true)
}
