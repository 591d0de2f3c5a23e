package core

import (
	"context"
	"fmt"
	"strings"
)

// Handler handles one operation on one route.
type Handler func(ctx context.Context, r *Request) (*Response, error)

// Route is a path pattern inside a mount and the operations it answers.
//
// Patterns are slash-separated segments. A literal segment matches itself;
// "{name}" matches one non-empty segment; a final "{name...}" matches the
// rest of the path, which may be empty or span several segments. Captured
// values land in Request.Params.
type Route struct {
	Pattern  string
	Handlers map[Operation]Handler
	// Exists decides between create and update for POST and PUT. When nil
	// a write is an update, as in Vault.
	Exists func(ctx context.Context, r *Request) (bool, error)
	// Unauthenticated routes need no token (logins, sys/health).
	Unauthenticated bool
	// Sudo routes need the sudo capability besides the operation's own.
	Sudo bool
	// AuditFirst makes reads and lists write their request entry to the
	// audit log before the handler runs, as every other operation does.
	// Without it a read's request entry is written with its response
	// entry, after the handler. Set it on reads that create something
	// (dynamic credentials, issued certificates), so that a crash in the
	// handler cannot leave the creation unlogged.
	AuditFirst bool
}

// router matches a path relative to a mount against a list of routes.
type router struct {
	routes []compiledRoute
}

type compiledRoute struct {
	Route
	segs []string
}

func newRouter(routes []Route) (*router, error) {
	r := &router{}
	for _, rt := range routes {
		segs := strings.Split(rt.Pattern, "/")
		for i, s := range segs {
			if strings.HasSuffix(s, "...}") && i != len(segs)-1 {
				return nil, fmt.Errorf("route %q: {name...} must be the last segment", rt.Pattern)
			}
		}
		r.routes = append(r.routes, compiledRoute{Route: rt, segs: segs})
	}
	return r, nil
}

// match returns the first route whose pattern matches path and the
// captured parameters.
func (r *router) match(path string) (*compiledRoute, map[string]string) {
	parts := strings.Split(path, "/")
	for i := range r.routes {
		if params, ok := matchSegs(r.routes[i].segs, parts); ok {
			return &r.routes[i], params
		}
	}
	return nil, nil
}

func matchSegs(segs, parts []string) (map[string]string, bool) {
	var params map[string]string
	set := func(k, v string) {
		if params == nil {
			params = map[string]string{}
		}
		params[k] = v
	}
	for i, s := range segs {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "...}") {
			name := s[1 : len(s)-4]
			if i >= len(parts) {
				set(name, "")
			} else {
				set(name, strings.Join(parts[i:], "/"))
			}
			return params, true
		}
		if i >= len(parts) {
			return nil, false
		}
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			if parts[i] == "" {
				return nil, false
			}
			set(s[1:len(s)-1], parts[i])
			continue
		}
		if s != parts[i] {
			return nil, false
		}
	}
	if len(parts) != len(segs) {
		return nil, false
	}
	return params, true
}

// MatchRoute finds the route of routes that matches path and its captured
// parameters. Backends use it in their own tests; the core uses a compiled
// router.
func MatchRoute(routes []Route, path string) (*Route, map[string]string, error) {
	r, err := newRouter(routes)
	if err != nil {
		return nil, nil, err
	}
	cr, params := r.match(path)
	if cr == nil {
		return nil, nil, ErrUnsupportedPath
	}
	return &cr.Route, params, nil
}
