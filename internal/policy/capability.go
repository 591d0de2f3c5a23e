package policy

import "fmt"

// Capability is one permission a rule can grant on a path. The zero value is
// not a capability.
type Capability uint8

// The capabilities, in the order canonical output lists them.
const (
	Create Capability = iota + 1
	Read
	Update
	Patch
	Delete
	List
	Sudo
	// Deny overrides every other capability: a rule carrying it grants
	// nothing, and a path merged from several policies with a deny anywhere
	// grants nothing.
	Deny

	numCapabilities = int(Deny)
)

var capNames = [...]string{
	Create: "create",
	Read:   "read",
	Update: "update",
	Patch:  "patch",
	Delete: "delete",
	List:   "list",
	Sudo:   "sudo",
	Deny:   "deny",
}

// String returns the Vault name of c ("read", "deny", ...).
func (c Capability) String() string {
	if c >= Create && c <= Deny {
		return capNames[c]
	}
	return fmt.Sprintf("capability(%d)", uint8(c))
}

// ParseCapability returns the capability with Vault name s. The names are
// create, read, update, patch, delete, list, sudo and deny; they are case
// sensitive, as in Vault. Vault's "subscribe" and "recover" are recognised
// and reported as not supported.
func ParseCapability(s string) (Capability, error) {
	for c := Create; c <= Deny; c++ {
		if capNames[c] == s {
			return c, nil
		}
	}
	switch s {
	case "subscribe", "recover":
		return 0, fmt.Errorf("capability %q is not supported by coffer; remove it from the policy", s)
	}
	return 0, fmt.Errorf("invalid capability %q", s)
}

// capSet is a set of capabilities as a bitmap, bit c for Capability c.
type capSet uint16

func (s capSet) has(c Capability) bool { return s&(1<<c) != 0 }

func (s *capSet) add(c Capability) { *s |= 1 << c }

// denies reports whether s grants nothing: it holds deny, or is empty.
func (s capSet) denies() bool { return s == 0 || s.has(Deny) }

// list returns the members of s in canonical order.
func (s capSet) list() []Capability {
	var out []Capability
	for c := Create; c <= Deny; c++ {
		if s.has(c) {
			out = append(out, c)
		}
	}
	return out
}

// names returns the Vault names of s sorted alphabetically, the order
// sys/capabilities-self reports them in; ["deny"] when s grants nothing.
func (s capSet) names() []string {
	if s.denies() {
		return []string{"deny"}
	}
	out := make([]string, 0, numCapabilities)
	for _, c := range [...]Capability{Create, Delete, List, Patch, Read, Sudo, Update} { // by name
		if s.has(c) {
			out = append(out, c.String())
		}
	}
	return out
}
