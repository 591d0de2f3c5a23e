package policy

import (
	"errors"
	"strings"
	"testing"
)

// rule is shorthand for a one-rule HCL policy.
func rule(path string, caps ...string) string {
	q := make([]string, len(caps))
	for i, c := range caps {
		q[i] = `"` + c + `"`
	}
	return `path "` + path + `" { capabilities = [` + strings.Join(q, ", ") + `] }`
}

// compile parses texts (named p0, p1, ...; the text "ROOT" is the root
// policy) and builds an ACL for id.
func compile(t testing.TB, id Identity, texts ...string) *ACL {
	t.Helper()
	var pols []*Policy
	for i, text := range texts {
		name := "p" + string(rune('0'+i))
		if text == "ROOT" {
			name, text = "root", ""
		}
		p, err := Parse(name, text)
		if err != nil {
			t.Fatalf("Parse(%q): %v", text, err)
		}
		pols = append(pols, p)
	}
	acl, err := NewACL(id, pols...)
	if err != nil {
		t.Fatalf("NewACL: %v", err)
	}
	return acl
}

var allOps = []Capability{Create, Read, Update, Patch, Delete, List, Sudo}

// allowedOps lists the operations Allowed grants on path, comma-separated,
// "-" for none.
func allowedOps(a *ACL, path string) string {
	var got []string
	for _, op := range allOps {
		if a.Allowed(path, op) {
			got = append(got, op.String())
		}
	}
	if len(got) == 0 {
		return "-"
	}
	return strings.Join(got, ",")
}

var (
	teamID = Identity{EntityID: "ent-1", EntityName: "alice", Metadata: map[string]string{"ns": "team-a", "team": "blue"}, Aliases: map[string]map[string]string{"auth_kubernetes_1234": {"service_account_namespace": "payments"}}}
	evilID = func(v string) Identity {
		return Identity{EntityID: v, EntityName: v, Metadata: map[string]string{"ns": v}}
	}
	noMetaID = Identity{EntityID: "ent-2", EntityName: "bob"}
)

// TestPolicy is the main table: each case parses its policies, builds an
// ACL and checks Capabilities (caps) and/or Allowed for every operation
// (ops), or expects the last policy to fail to parse with exactly err.
func TestPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		pols []string
		id   Identity
		path string
		caps string // comma-joined Capabilities(path); "" = not checked
		ops  string // comma-joined allowed operations; "" = not checked
		err  string // exact parse error of the last policy
	}{
		// Exact, "*" and "+" matching.
		{name: "exact match", pols: []string{rule("secret/foo", "read")}, path: "secret/foo", caps: "read", ops: "read"},
		{name: "exact does not match child", pols: []string{rule("secret/foo", "read")}, path: "secret/foo/bar", caps: "deny", ops: "-"},
		{name: "exact does not match parent", pols: []string{rule("secret/foo", "read")}, path: "secret", caps: "deny"},
		{name: "exact does not match prefix of itself", pols: []string{rule("secret/foo", "read")}, path: "secret/fo", caps: "deny"},
		{name: "glob matches deep path", pols: []string{rule("secret/*", "read")}, path: "secret/a/b/c", caps: "read"},
		{name: "glob matches its folder", pols: []string{rule("secret/*", "list")}, path: "secret/", caps: "list", ops: "list"},
		{name: "glob does not match without slash", pols: []string{rule("secret/*", "read")}, path: "secret", caps: "deny"},
		{name: "glob is a string prefix", pols: []string{rule("secret/app*", "read")}, path: "secret/application/x", caps: "read"},
		{name: "lone star matches everything", pols: []string{rule("*", "read")}, path: "anything/at/all", caps: "read"},
		{name: "lone star matches empty path", pols: []string{rule("*", "read")}, path: "", caps: "read"},
		{name: "plus matches one segment", pols: []string{rule("secret/+/config", "read")}, path: "secret/team/config", caps: "read"},
		{name: "plus does not match two segments", pols: []string{rule("secret/+/config", "read")}, path: "secret/a/b/config", caps: "deny"},
		{name: "plus does not match zero segments", pols: []string{rule("secret/+/config", "read")}, path: "secret/config", caps: "deny"},
		{name: "plus matches an empty segment", pols: []string{rule("secret/+/config", "read")}, path: "secret//config", caps: "read"},
		{name: "plus at end matches folder for list", pols: []string{rule("secret/+", "list")}, path: "secret/", caps: "list", ops: "list"},
		{name: "plus at end rejects deeper path", pols: []string{rule("secret/+", "read")}, path: "secret/a/b", caps: "deny"},
		{name: "plus then glob matches deep", pols: []string{rule("secret/+/data/*", "read")}, path: "secret/a/data/x/y", caps: "read"},
		{name: "plus then glob needs the slash", pols: []string{rule("secret/+/data/*", "read")}, path: "secret/a/data", caps: "deny"},
		{name: "plus then glob literal segment is whole", pols: []string{rule("secret/+/data/*", "read")}, path: "secret/a/datax/y", caps: "deny"},
		{name: "plus then partial glob", pols: []string{rule("secret/+/ab*", "read")}, path: "secret/x/abc/d", caps: "read"},
		{name: "plus then partial glob mismatch", pols: []string{rule("secret/+/ab*", "read")}, path: "secret/x/ba", caps: "deny"},
		{name: "leading plus", pols: []string{rule("+/config", "read")}, path: "kv/config", caps: "read"},
		{name: "lone plus", pols: []string{rule("+", "read")}, path: "kv", caps: "read"},
		{name: "lone plus one segment only", pols: []string{rule("+", "read")}, path: "kv/x", caps: "deny"},
		{name: "several plus segments", pols: []string{rule("a/+/c/+", "read")}, path: "a/b/c/d", caps: "read"},
		{name: "leading slash in rule is dropped", pols: []string{rule("/secret/foo", "read")}, path: "secret/foo", caps: "read"},
		{name: "leading slash in request is dropped", pols: []string{rule("secret/foo", "read")}, path: "/secret/foo", caps: "read"},
		{name: "only one leading slash is dropped", pols: []string{rule("//secret/foo", "read")}, path: "secret/foo", caps: "deny"},
		{name: "no rules", pols: []string{""}, path: "secret/foo", caps: "deny", ops: "-"},

		// Priority between overlapping rules: only one rule applies.
		{name: "exact beats glob", pols: []string{rule("secret/*", "read"), rule("secret/foo", "update")}, path: "secret/foo", caps: "update"},
		{name: "exact beats plus", pols: []string{rule("secret/+", "read"), rule("secret/foo", "update")}, path: "secret/foo", caps: "update"},
		{name: "globs do not union", pols: []string{rule("secret/*", "read"), rule("secret/a*", "list")}, path: "secret/abc", caps: "list"},
		{name: "longer glob wins over shorter deny", pols: []string{rule("secret/*", "deny"), rule("secret/app/*", "read")}, path: "secret/app/x", caps: "read"},
		{name: "longer glob deny wins over shorter grant", pols: []string{rule("secret/*", "read"), rule("secret/app/*", "deny")}, path: "secret/app/x", caps: "deny"},
		{name: "shorter glob still applies elsewhere", pols: []string{rule("secret/*", "read"), rule("secret/app/*", "deny")}, path: "secret/other", caps: "read"},
		{name: "plus beats star at same position", pols: []string{rule("secret/*", "update"), rule("secret/+", "read")}, path: "secret/x", caps: "read"},
		{name: "star still covers deeper than plus", pols: []string{rule("secret/*", "update"), rule("secret/+", "read")}, path: "secret/x/y", caps: "update"},
		{name: "later wildcard wins", pols: []string{rule("secret/+/b", "update"), rule("secret/a/+", "read")}, path: "secret/a/b", caps: "read"},
		{name: "later star beats earlier plus", pols: []string{rule("secret/+", "update"), rule("secret/a*", "read")}, path: "secret/ab", caps: "read"},
		{name: "fewer plus segments win", pols: []string{rule("a/+/c/+", "update"), rule("a/+/c/d", "read")}, path: "a/x/c/d", caps: "read"},
		{name: "non-glob beats glob at same wildcard", pols: []string{rule("a/+/c*", "update"), rule("a/+/c", "read")}, path: "a/x/c", caps: "read"},
		{name: "longer wins among equal globs", pols: []string{rule("a/+/b*", "update"), rule("a/+/bar*", "read")}, path: "a/x/barn", caps: "read"},
		{name: "lexically greater wins last", pols: []string{rule("+/+/c", "update"), rule("+/b/+", "read")}, path: "x/b/c", caps: "read"},
		{name: "later star deny beats plus glob", pols: []string{rule("secret/+/*", "read"), rule("secret/team/*", "deny")}, path: "secret/team/x", caps: "deny"},
		{name: "plus at star position beats prefix", pols: []string{rule("secret/data/*", "read"), rule("secret/data/+/meta", "update")}, path: "secret/data/x/meta", caps: "update"},
		{name: "prefix applies when plus rule misses", pols: []string{rule("secret/data/*", "read"), rule("secret/data/+/meta", "update")}, path: "secret/data/x/other", caps: "read"},
		{name: "exact with slash beats glob", pols: []string{rule("secret/*", "read"), rule("secret/", "list")}, path: "secret/", caps: "list"},

		// Union and deny across and within policies.
		{name: "same path unions across policies", pols: []string{rule("secret/x", "read"), rule("secret/x", "update")}, path: "secret/x", caps: "read,update", ops: "read,update"},
		{name: "same glob unions across policies", pols: []string{rule("secret/*", "read"), rule("secret/*", "list")}, path: "secret/y", caps: "list,read"},
		{name: "same plus path unions", pols: []string{rule("a/+/c", "read"), rule("a/+/c", "delete")}, path: "a/b/c", caps: "delete,read"},
		{name: "deny wins across policies", pols: []string{rule("secret/x", "read"), rule("secret/x", "deny")}, path: "secret/x", caps: "deny", ops: "-"},
		{name: "deny wins whatever the order", pols: []string{rule("secret/x", "deny"), rule("secret/x", "read")}, path: "secret/x", caps: "deny"},
		{name: "deny wins on globs", pols: []string{rule("secret/*", "read", "list"), rule("secret/*", "deny")}, path: "secret/x", caps: "deny"},
		{name: "deny wins on plus rules", pols: []string{rule("a/+", "read"), rule("a/+", "deny")}, path: "a/b", caps: "deny"},
		{name: "same path twice in one policy unions", pols: []string{rule("s/x", "read") + "\n" + rule("s/x", "list")}, path: "s/x", caps: "list,read"},
		{name: "deny within a rule drops the rest", pols: []string{rule("s/x", "read", "deny", "update")}, path: "s/x", caps: "deny"},
		{name: "empty rule grants nothing and shadows", pols: []string{rule("secret/*", "read"), rule("secret/x")}, path: "secret/x", caps: "deny"},
		{name: "exact and glob of same text are different rules", pols: []string{rule("secret/x", "read"), rule("secret/x*", "update")}, path: "secret/x", caps: "read"},
		{name: "every capability sorted", pols: []string{rule("s", "update", "sudo", "read", "patch", "list", "delete", "create")}, path: "s", caps: "create,delete,list,patch,read,sudo,update", ops: "create,read,update,patch,delete,list,sudo"},
		{name: "duplicate capabilities collapse", pols: []string{rule("s", "read", "read")}, path: "s", caps: "read"},
		{name: "sudo is reported", pols: []string{rule("sys/rotate", "update", "sudo")}, path: "sys/rotate", caps: "sudo,update", ops: "update,sudo"},

		// LIST looks up the path without its trailing slash first.
		{name: "list uses exact rule without slash", pols: []string{rule("secret/metadata/app", "list")}, path: "secret/metadata/app/", caps: "list", ops: "list"},
		{name: "read does not trim the slash", pols: []string{rule("secret/metadata/app", "read", "list")}, path: "secret/metadata/app/", ops: "list"},
		{name: "list prefers glob on trimmed path", pols: []string{rule("secret/app*", "list"), rule("secret/app/*", "read")}, path: "secret/app/", caps: "list", ops: "read,list"},

		// Legacy policy shorthand.
		{name: "legacy read", pols: []string{`path "s/*" { policy = "read" }`}, path: "s/x", caps: "list,read"},
		{name: "legacy write", pols: []string{`path "s/*" { policy = "write" }`}, path: "s/x", caps: "create,delete,list,read,update"},
		{name: "legacy sudo", pols: []string{`path "s/*" { policy = "sudo" }`}, path: "s/x", caps: "create,delete,list,read,sudo,update"},
		{name: "legacy deny", pols: []string{`path "s/*" { policy = "deny" }`}, path: "s/x", caps: "deny"},
		{name: "legacy plus capabilities union", pols: []string{`path "s/*" { policy = "read" capabilities = ["update"] }`}, path: "s/x", caps: "list,read,update"},

		// JSON documents.
		{name: "json single path", pols: []string{`{"path":{"x/*":{"capabilities":["read"]}}}`}, path: "x/y", caps: "read"},
		{name: "json several paths", pols: []string{`{"path":{"a":{"capabilities":["read"]},"b/*":{"capabilities":["list","update"]}}}`}, path: "b/c", caps: "list,update"},
		{name: "json list of path objects", pols: []string{`{"path":[{"a":{"capabilities":["read"]}},{"b":{"capabilities":["delete"]}}]}`}, path: "b", caps: "delete"},
		{name: "json legacy policy", pols: []string{`{"path":{"a":{"policy":"write"}}}`}, path: "a", caps: "create,delete,list,read,update"},
		{name: "json empty rule", pols: []string{`{"path":{"a":{}}}`}, path: "a", caps: "deny"},
		{name: "json with parameters", pols: []string{`{"path":{"a":{"capabilities":["update"],"allowed_parameters":{"x":[]}}}}`}, path: "a", caps: "update"},
		{name: "json and hcl merge", pols: []string{`{"path":{"a":{"capabilities":["read"]}}}`, rule("a", "list")}, path: "a", caps: "list,read"},

		// Root.
		{name: "root allows everything", pols: []string{"ROOT"}, path: "sys/anything", caps: "root", ops: "create,read,update,patch,delete,list,sudo"},
		{name: "root wins over deny", pols: []string{rule("*", "deny"), "ROOT"}, path: "secret/x", caps: "root"},
		{name: "default is an ordinary policy", pols: []string{DefaultPolicy}, path: "secret/x", caps: "deny"},
		{name: "default policy grants lookup-self", pols: []string{DefaultPolicy}, path: "auth/token/lookup-self", caps: "read"},
		{name: "default policy grants cubbyhole", pols: []string{DefaultPolicy}, path: "cubbyhole/x", caps: "create,delete,list,read,update"},

		// Identity templates.
		{name: "template entity id", pols: []string{rule("secret/{{identity.entity.id}}/*", "read")}, id: teamID, path: "secret/ent-1/x", caps: "read"},
		{name: "template entity id other entity", pols: []string{rule("secret/{{identity.entity.id}}/*", "read")}, id: teamID, path: "secret/ent-2/x", caps: "deny"},
		{name: "template entity name", pols: []string{rule("users/{{identity.entity.name}}", "read")}, id: teamID, path: "users/alice", caps: "read"},
		{name: "template short metadata", pols: []string{rule("secret/data/{{identity.metadata.ns}}/*", "read")}, id: teamID, path: "secret/data/team-a/db", caps: "read"},
		{name: "template entity metadata", pols: []string{rule("secret/data/{{identity.entity.metadata.ns}}/*", "read")}, id: teamID, path: "secret/data/team-a/db", caps: "read"},
		{name: "template alias metadata", pols: []string{rule("k8s/{{identity.entity.aliases.auth_kubernetes_1234.metadata.service_account_namespace}}/*", "read")}, id: teamID, path: "k8s/payments/x", caps: "read"},
		{name: "template spaces inside braces", pols: []string{rule("u/{{ identity.entity.name }}", "read")}, id: teamID, path: "u/alice", caps: "read"},
		{name: "template twice in a path", pols: []string{rule("t/{{identity.metadata.team}}/{{identity.entity.name}}", "read")}, id: teamID, path: "t/blue/alice", caps: "read"},
		{name: "template inside a segment", pols: []string{rule("t/team-{{identity.metadata.team}}/*", "read")}, id: teamID, path: "t/team-blue/x", caps: "read"},
		{name: "template with plus segment", pols: []string{rule("t/+/{{identity.entity.name}}", "read")}, id: teamID, path: "t/any/alice", caps: "read"},
		{name: "template missing metadata drops rule", pols: []string{rule("secret/{{identity.metadata.ns}}/*", "read")}, id: noMetaID, path: "secret//x", caps: "deny"},
		{name: "template missing metadata keeps other rules", pols: []string{rule("secret/*", "list") + "\n" + rule("secret/{{identity.metadata.ns}}/*", "read")}, id: noMetaID, path: "secret/foo/bar", caps: "list"},
		{name: "template missing alias drops rule", pols: []string{rule("k/{{identity.entity.aliases.nope.metadata.x}}", "read")}, id: teamID, path: "k/", caps: "deny"},
		{name: "template missing alias key drops rule", pols: []string{rule("k/{{identity.entity.aliases.auth_kubernetes_1234.metadata.nope}}", "read")}, id: teamID, path: "k/", caps: "deny"},
		{name: "template empty entity id drops rule", pols: []string{rule("e/{{identity.entity.id}}*", "read")}, id: Identity{}, path: "e/anything", caps: "deny"},
		{name: "template empty metadata value drops rule", pols: []string{rule("e/{{identity.metadata.ns}}*", "read")}, id: evilID(""), path: "e/anything", caps: "deny"},
		{name: "template value with slash drops rule", pols: []string{rule("s/{{identity.metadata.ns}}/*", "read")}, id: evilID("a/b"), path: "s/a/b/x", caps: "deny"},
		{name: "template value star drops rule", pols: []string{rule("s/{{identity.metadata.ns}}", "read")}, id: evilID("*"), path: "s/anything", caps: "deny"},
		{name: "template value star does not match literally", pols: []string{rule("s/{{identity.metadata.ns}}", "read")}, id: evilID("*"), path: "s/*", caps: "deny"},
		{name: "template value plus drops rule", pols: []string{rule("s/{{identity.metadata.ns}}/x", "read")}, id: evilID("+"), path: "s/any/x", caps: "deny"},
		{name: "template value dotdot drops rule", pols: []string{rule("s/{{identity.metadata.ns}}/x", "read")}, id: evilID(".."), path: "s/../x", caps: "deny"},
		{name: "template value with dotdot inside drops rule", pols: []string{rule("s/{{identity.metadata.ns}}/x", "read")}, id: evilID("a..b"), path: "s/a..b/x", caps: "deny"},
		{name: "template value dot drops rule", pols: []string{rule("s/{{identity.metadata.ns}}/x", "read")}, id: evilID("."), path: "s/./x", caps: "deny"},
		{name: "template value NUL drops rule", pols: []string{rule("s/{{identity.metadata.ns}}", "read")}, id: evilID("a\x00"), path: "s/a\x00", caps: "deny"},
		{name: "template value braces stay literal", pols: []string{rule("s/{{identity.metadata.ns}}", "read")}, id: evilID("{{identity.entity.id}}"), path: "s/{{identity.entity.id}}", caps: "read"},
		{name: "template deny rule dropped when unresolved", pols: []string{rule("secret/*", "read"), rule("secret/{{identity.metadata.ns}}/*", "deny")}, id: noMetaID, path: "secret/x/y", caps: "read"},
		{name: "template deny rule applies when resolved", pols: []string{rule("secret/*", "read"), rule("secret/{{identity.metadata.ns}}/*", "deny")}, id: teamID, path: "secret/team-a/y", caps: "deny"},

		// Parse errors, with the exact text.
		{name: "error invalid capability", pols: []string{rule("x", "reed")}, err: `path "x": invalid capability "reed"`},
		{name: "error capability case", pols: []string{rule("x", "Read")}, err: `path "x": invalid capability "Read"`},
		{name: "error subscribe capability", pols: []string{rule("x", "subscribe")}, err: `path "x": capability "subscribe" is not supported by coffer; remove it from the policy`},
		{name: "error recover capability", pols: []string{rule("x", "recover")}, err: `path "x": capability "recover" is not supported by coffer; remove it from the policy`},
		{name: "error root capability", pols: []string{rule("x", "root")}, err: `path "x": invalid capability "root"`},
		{name: "error invalid legacy policy", pols: []string{`path "x" { policy = "admin" }`}, err: `path "x": invalid policy "admin"`},
		{name: "error unknown rule key", pols: []string{`path "x" { capabilites = ["read"] }`}, err: `path "x": invalid key "capabilites" on line 1`},
		{name: "error unknown rule key line", pols: []string{"path \"x\" {\n  capabilities = []\n  bogus = 1\n}"}, err: `path "x": invalid key "bogus" on line 3`},
		{name: "error unknown top-level key", pols: []string{`paths "x" { capabilities = ["read"] }`}, err: `invalid key "paths" on line 1`},
		{name: "error unknown json key", pols: []string{`{"path":{"x":{"caps":["read"]}}}`}, err: `path "x": invalid key "caps"`},
		{name: "error hcl syntax", pols: []string{`path "x" { capabilities = [read] }`}, err: `At 1:28: unexpected token while parsing list: IDENT`},
		{name: "error unterminated block", pols: []string{`path "x" {`}, err: `At 1:12: object expected closing RBRACE got: EOF`},
		{name: "error not an object", pols: []string{`[]`}, err: `At 1:1: expected: IDENT | STRING | ASSIGN | LBRACE got: LBRACK`},
		{name: "error empty path", pols: []string{rule("", "read")}, err: `path "": empty path`},
		{name: "error slash only path", pols: []string{rule("/", "read")}, err: `path "/": empty path`},
		{name: "error NUL in path", pols: []string{`path "a\u0000b" { capabilities = ["read"] }`}, err: `path "a\x00b": path contains a NUL byte`},
		{name: "error invalid UTF-8 in path", pols: []string{`path "a\xffb" { capabilities = ["read"] }`}, err: `string "a\xffb" is not valid UTF-8`},
		{name: "error star in the middle", pols: []string{rule("secret/*/x", "read")}, err: `path "secret/*/x": invalid use of wildcards ("*" is only allowed as the last character)`},
		{name: "error two stars", pols: []string{rule("secret/**", "read")}, err: `path "secret/**": invalid use of wildcards ("*" is only allowed as the last character)`},
		{name: "error plus inside segment", pols: []string{rule("secret/a+/x", "read")}, err: `path "secret/a+/x": invalid use of wildcards ("+" must be a whole path segment, like "secret/+/config")`},
		{name: "error plus star", pols: []string{rule("secret/+*", "read")}, err: `path "secret/+*": invalid use of wildcards ('+*' is forbidden)`},
		{name: "error unbalanced open template", pols: []string{rule("s/{{identity.entity.id", "read")}, err: `path "s/{{identity.entity.id": failed to validate policy templating: unbalanced templating characters`},
		{name: "error unbalanced close template", pols: []string{rule("s/}}", "read")}, err: `path "s/}}": failed to validate policy templating: unbalanced templating characters`},
		{name: "error unsupported template", pols: []string{rule("s/{{identity.groups.names.admins.id}}", "read")}, err: `path "s/{{identity.groups.names.admins.id}}": unsupported identity template "{{identity.groups.names.admins.id}}": coffer supports {{identity.entity.id}}, {{identity.entity.name}}, {{identity.metadata.<key>}}, {{identity.entity.metadata.<key>}} and {{identity.entity.aliases.<mount accessor>.metadata.<key>}}`},
		{name: "error template makes plus partial", pols: []string{rule("s/+{{identity.entity.id}}", "read")}, err: `path "s/+{{identity.entity.id}}": invalid use of wildcards ("+" must be a whole path segment, like "secret/+/config")`},
		{name: "error mfa_methods", pols: []string{`path "x" { capabilities = ["read"] mfa_methods = ["m"] }`}, err: `path "x": mfa_methods is not supported by coffer; remove it from the policy`},
		{name: "error control_group", pols: []string{`path "x" { control_group = { ttl = "1h" } }`}, err: `path "x": control_group is not supported by coffer; remove it from the policy`},
		{name: "error subscribe_event_types", pols: []string{`path "x" { subscribe_event_types = ["*"] }`}, err: `path "x": subscribe_event_types is not supported by coffer; remove it from the policy`},
		{name: "error capabilities number", pols: []string{`path "x" { capabilities = 5 }`}, err: `path "x": capabilities: expected a string, got number`},
		{name: "error capabilities block", pols: []string{`path "x" { capabilities = { read = true } }`}, err: `path "x": capabilities: expected a list, got a block`},
		{name: "error capabilities null", pols: []string{`{"path":{"x":{"capabilities":null}}}`}, err: `path "x": capabilities: expected a string, got null`},
		{name: "error duplicate key", pols: []string{`path "x" { capabilities = ["read"] capabilities = ["list"] }`}, err: `path "x": duplicate key "capabilities" on line 1`},
		{name: "error path without label", pols: []string{`path { capabilities = ["read"] }`}, err: `path block on line 1 has no path: write path "secret/data/app/*" { capabilities = ["read"] }`},
		{name: "error path as a string", pols: []string{`path = "x"`}, err: `path on line 1 must be a block: path "secret/data/app/*" { capabilities = ["read"] }`},
		{name: "error json path as a string", pols: []string{`{"path":"x"}`}, err: `path must be a block: path "secret/data/app/*" { capabilities = ["read"] }`},
		{name: "error two labels", pols: []string{`path "a" "b" { capabilities = ["read"] }`}, err: `path block on line 1 has 2 labels; it takes exactly one, the path`},
		{name: "error rule not a block", pols: []string{`{"path":{"x":["read"]}}`}, err: `path "x": expected a block of rules, like { capabilities = ["read"] }`},
		{name: "error allowed parameter mid wildcard", pols: []string{`path "x" { allowed_parameters = { "a*b" = [] } }`}, err: `path "x": allowed_parameters: parameter key "a*b" cannot contain non-tail wildcards`},
		{name: "error denied parameter pointer key", pols: []string{`path "x" { denied_parameters = { "/a/b" = [] } }`}, err: `path "x": denied_parameters: parameter key "/a/b": JSON-pointer parameter keys are not supported by coffer`},
		{name: "error parameters not a map", pols: []string{`path "x" { allowed_parameters = ["a"] }`}, err: `path "x": allowed_parameters: expected a map of parameter names to lists of values, got a list`},
		{name: "error parameter value nested", pols: []string{`path "x" { allowed_parameters = { "a" = [{ b = 1 }] } }`}, err: `path "x": allowed_parameters: parameter key "a": values must be strings, numbers or booleans, got a block`},
		{name: "error parameter number overflow", pols: []string{`path "x" { allowed_parameters = { "a" = [99999999999999999999] } }`}, err: `path "x": allowed_parameters: parameter key "a": invalid number 99999999999999999999`},
		{name: "error duplicate parameter after lowercasing", pols: []string{`path "x" { allowed_parameters = { "A" = [] "a" = [] } }`}, err: `path "x": allowed_parameters: duplicate parameter key "a"`},
		{name: "error required parameter wildcard", pols: []string{`path "x" { required_parameters = ["*"] }`}, err: `path "x": required_parameters: parameter key "*": wildcard is not permitted here`},
		{name: "error bad wrapping ttl", pols: []string{`path "x" { min_wrapping_ttl = "soon" }`}, err: `path "x": error parsing min_wrapping_ttl: time: invalid duration "soon"`},
		{name: "error negative wrapping ttl", pols: []string{`path "x" { max_wrapping_ttl = "-5s" }`}, err: `path "x": error parsing max_wrapping_ttl: duration must not be negative`},
		{name: "error wrapping ttl bool", pols: []string{`path "x" { max_wrapping_ttl = true }`}, err: `path "x": error parsing max_wrapping_ttl: expected a duration like "300s" or a number of seconds, got true`},
		{name: "error max below min", pols: []string{`path "x" { min_wrapping_ttl = "1h" max_wrapping_ttl = "1m" }`}, err: `path "x": max_wrapping_ttl cannot be less than min_wrapping_ttl`},
		{name: "error heredoc", pols: []string{"path \"x\" {\n comment = <<EOT\nhi\nEOT\n}"}, err: `path "x": comment: heredoc strings are not supported in policies`},
		{name: "error json boolean in a list", pols: []string{`{"path":{"a":{"allowed_parameters":{"x":[true]}}}}`}, err: `true and false inside a list are not supported in JSON policies; write the policy in HCL`},
		{name: "error json nested list", pols: []string{`{"path":{"a":{"capabilities":[["read"]]}}}`}, err: `nested lists are not supported in policies`},
		{name: "error json trailing garbage", pols: []string{`{"path":{"a":{}}} x`}, err: `invalid JSON policy: unexpected text after the top-level object`},
		{name: "error name not a string", pols: []string{`name = ["a"]`}, err: `name: expected a string, got a list`},
		{name: "error is reported for the bad rule only", pols: []string{rule("good", "read") + "\n" + rule("bad", "nope")}, err: `path "bad": invalid capability "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.err != "" {
				last := tt.pols[len(tt.pols)-1]
				_, err := Parse("p", last)
				if err == nil {
					t.Fatalf("Parse succeeded, want error %q", tt.err)
				}
				if err.Error() != tt.err {
					t.Fatalf("error\n got: %s\nwant: %s", err, tt.err)
				}
				if !errors.Is(err, ErrInvalidPolicy) {
					t.Errorf("errors.Is(%v, ErrInvalidPolicy) = false", err)
				}
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Errorf("error is %T, want *ParseError", err)
				}
				return
			}
			acl := compile(t, tt.id, tt.pols...)
			if tt.caps != "" {
				if got := strings.Join(acl.Capabilities(tt.path), ","); got != tt.caps {
					t.Errorf("Capabilities(%q) = %s, want %s", tt.path, got, tt.caps)
				}
			}
			if tt.ops != "" {
				if got := allowedOps(acl, tt.path); got != tt.ops {
					t.Errorf("allowed operations on %q = %s, want %s", tt.path, got, tt.ops)
				}
			}
		})
	}
}
