package rbac

import (
	"fmt"
	"strings"
)

// Subject kinds, as in rbac/v1 bindings.
const (
	UserKind           = "User"
	GroupKind          = "Group"
	ServiceAccountKind = "ServiceAccount"
)

// Users and groups the apiserver assigns itself.
const (
	Anonymous          = "system:anonymous"
	Authenticated      = "system:authenticated"
	Unauthenticated    = "system:unauthenticated"
	AllServiceAccounts = "system:serviceaccounts"
	Masters            = "system:masters"

	saUserPrefix  = "system:serviceaccount:"
	saGroupPrefix = "system:serviceaccounts:"
)

// Subject is a user, a group or a service account.
type Subject struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// String renders "User alice", "Group devs" or "ServiceAccount ns/name".
func (s Subject) String() string {
	if s.Kind == ServiceAccountKind {
		return s.Kind + " " + s.Namespace + "/" + s.Name
	}
	return s.Kind + " " + s.Name
}

// Key is a compact unique form, used as a map key.
func (s Subject) Key() string {
	if s.Kind == ServiceAccountKind {
		return "ServiceAccount:" + s.Namespace + "/" + s.Name
	}
	return s.Kind + ":" + s.Name
}

// UserName is the name the apiserver authenticates the subject as; empty
// for a group.
func (s Subject) UserName() string {
	switch s.Kind {
	case UserKind:
		return s.Name
	case ServiceAccountKind:
		return saUserPrefix + s.Namespace + ":" + s.Name
	}
	return ""
}

// Identity is what a request is authorized as: a user name and groups.
// A group alone has an empty User.
type Identity struct {
	User   string   `json:"user,omitempty"`
	Groups []string `json:"groups,omitempty"`
}

// Identity returns what the apiserver authenticates the subject as: a
// service account is in system:serviceaccounts, its namespace's group and
// system:authenticated; a user is in system:authenticated (their other
// groups come from the authenticator and are unknown here), except
// system:anonymous, which is in system:unauthenticated; a group is just
// itself.
func (s Subject) Identity() Identity {
	switch s.Kind {
	case ServiceAccountKind:
		return Identity{User: s.UserName(), Groups: []string{AllServiceAccounts, saGroupPrefix + s.Namespace, Authenticated}}
	case UserKind:
		if s.Name == Anonymous {
			return Identity{User: s.Name, Groups: []string{Unauthenticated}}
		}
		return Identity{User: s.Name, Groups: []string{Authenticated}}
	}
	return Identity{Groups: []string{s.Name}}
}

// Groups returns the groups of Identity as subjects.
func (s Subject) Groups() []Subject {
	if s.Kind == GroupKind {
		return nil
	}
	id := s.Identity()
	out := make([]Subject, len(id.Groups))
	for i, g := range id.Groups {
		out[i] = Subject{Kind: GroupKind, Name: g}
	}
	return out
}

// ServiceAccountUser splits a "system:serviceaccount:NS:NAME" user name.
func ServiceAccountUser(user string) (ns, name string, ok bool) {
	rest, ok := strings.CutPrefix(user, saUserPrefix)
	if !ok {
		return "", "", false
	}
	ns, name, ok = strings.Cut(rest, ":")
	if !ok || ns == "" || name == "" || strings.Contains(name, ":") {
		return "", "", false
	}
	return ns, name, true
}

// subjectOfUser is the subject a user name stands for: a service account
// for "system:serviceaccount:NS:NAME", otherwise a user.
func subjectOfUser(user string) Subject {
	if ns, name, ok := ServiceAccountUser(user); ok {
		return Subject{Kind: ServiceAccountKind, Namespace: ns, Name: name}
	}
	return Subject{Kind: UserKind, Name: user}
}

// ParseSubject reads a subject written as "user:NAME", "group:NAME",
// "serviceaccount:NS/NAME" (or "sa:NS/NAME"), or a bare
// "system:serviceaccount:NS:NAME". Kinds are case-insensitive.
func ParseSubject(s string) (Subject, error) {
	if ns, name, ok := ServiceAccountUser(s); ok {
		return Subject{Kind: ServiceAccountKind, Namespace: ns, Name: name}, nil
	}
	kind, rest, ok := strings.Cut(s, ":")
	if !ok || rest == "" {
		return Subject{}, fmt.Errorf("subject %q: want user:NAME, group:NAME or serviceaccount:NAMESPACE/NAME", s)
	}
	switch strings.ToLower(kind) {
	case "user", "u":
		return subjectOfUser(rest), nil
	case "group", "g":
		return Subject{Kind: GroupKind, Name: rest}, nil
	case "serviceaccount", "sa":
		ns, name, ok := strings.Cut(rest, "/")
		if !ok || ns == "" || name == "" {
			return Subject{}, fmt.Errorf("subject %q: a service account is serviceaccount:NAMESPACE/NAME", s)
		}
		return Subject{Kind: ServiceAccountKind, Namespace: ns, Name: name}, nil
	}
	return Subject{}, fmt.Errorf("subject %q: unknown kind %q: want user, group or serviceaccount", s, kind)
}
