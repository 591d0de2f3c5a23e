package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Auth reaches the token store's self endpoints and auth methods' login.
type Auth struct{ c *Client }

// Auth returns the auth client.
func (c *Client) Auth() *Auth { return &Auth{c: c} }

// Login writes data (for kubernetes and jwt: {"role": ..., "jwt": ...}) to
// auth/<mount>/login and returns the new token's auth block. It sends no
// token, so an expired one cannot get in the way of a fresh login.
func (a *Auth) Login(ctx context.Context, mount string, data any) (*SecretAuth, error) {
	s, err := a.c.WithToken("").Logical().Write(ctx, "auth/"+strings.Trim(mount, "/")+"/login", data)
	if err != nil {
		return nil, err
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return nil, fmt.Errorf("login at auth/%s returned no token", strings.Trim(mount, "/"))
	}
	return s.Auth, nil
}

// RenewSelf renews the client's token. A positive increment asks for that
// TTL (the server may grant less); zero asks for the token's own TTL.
func (a *Auth) RenewSelf(ctx context.Context, increment time.Duration) (*SecretAuth, error) {
	body := map[string]any{}
	if increment > 0 {
		body["increment"] = int64(increment / time.Second)
	}
	s, err := a.c.Logical().Write(ctx, "auth/token/renew-self", body)
	if err != nil {
		return nil, err
	}
	if s == nil || s.Auth == nil {
		return nil, fmt.Errorf("renew-self returned no auth block")
	}
	return s.Auth, nil
}

// TokenInfo is what auth/token/lookup-self tells about the client's token.
type TokenInfo struct {
	// TTL is the time left; zero for a token that never expires.
	TTL time.Duration
	// CreationTTL is the TTL the token was created with.
	CreationTTL time.Duration
	Renewable   bool
	Policies    []string
}

// LookupSelf reads the client's own token.
func (a *Auth) LookupSelf(ctx context.Context) (*TokenInfo, error) {
	var s struct {
		Data struct {
			TTL         json.Number `json:"ttl"`
			CreationTTL json.Number `json:"creation_ttl"`
			Renewable   bool        `json:"renewable"`
			Policies    []string    `json:"policies"`
		} `json:"data"`
	}
	if _, err := a.c.do(ctx, http.MethodGet, "auth/token/lookup-self", nil, nil, &s, false); err != nil {
		return nil, err
	}
	ttl, err := s.Data.TTL.Int64()
	if err != nil && s.Data.TTL != "" {
		return nil, fmt.Errorf("lookup-self: ttl %q is not a number", s.Data.TTL)
	}
	created, _ := s.Data.CreationTTL.Int64()
	return &TokenInfo{TTL: time.Duration(ttl) * time.Second, CreationTTL: time.Duration(created) * time.Second,
		Renewable: s.Data.Renewable, Policies: s.Data.Policies}, nil
}
