// Package policy parses, compiles and evaluates coffer's ACL policies, which
// have Vault's syntax and semantics. It is pure: no I/O, no storage, no
// clock.
//
// # Documents
//
// A policy is a list of path rules, in Vault's HCL form
//
//	path "secret/data/app/*" {
//	  capabilities = ["read", "list"]
//	}
//
// or the equivalent JSON, {"path": {"secret/data/app/*": {"capabilities":
// ["read", "list"]}}}. Parse reads either and reports the first problem.
// Its errors carry the text Vault puts after "failed to parse policy: " on
// the wire (for example `path "x": invalid capability "reed"`); the server
// adds that prefix. Every error a rule causes names the rule's path, even
// where Vault does not (wrapping TTLs, templating), and an unknown key is
// reported on one line (`invalid key "x" on line 3`) rather than in Vault's
// multi-error layout. Errors match ErrInvalidPolicy and are *ParseError.
//
// JSON documents are also read with encoding/json, because the HCL JSON
// reader silently drops true, false and nested lists inside lists; such
// documents are rejected rather than read wrongly. Heredoc strings are
// not supported.
//
// Keys in a rule:
//
//	capabilities         create, read, update, patch, delete, list, sudo, deny
//	policy               Vault's legacy shorthand: "deny", "read" (read, list),
//	                     "write" (create, read, update, delete, list),
//	                     "sudo" (write plus sudo)
//	allowed_parameters   {"name" = ["value", "prefix*"], "*" = []}
//	denied_parameters    same shape; wins over allowed_parameters
//	required_parameters  ["name", ...]
//	min_wrapping_ttl     "30s", "5m", 300 or "1d"
//	max_wrapping_ttl     the response must be wrapped, with a TTL in range
//	comment              free text
//
// Vault's "subscribe" and "recover" capabilities and its Enterprise keys
// (mfa_methods, control_group) and subscribe_event_types are rejected as not
// supported, never ignored. Any other key is an error naming it. A top-level
// "name" key is accepted and ignored, as the name comes from the API path.
// A rule with deny keeps only deny. A rule with no capabilities matches its
// paths and grants nothing there.
//
// # Paths and globs
//
// A rule path is matched against the request path after /v1/ (a leading "/"
// is dropped). A "*" may only be the last character: "secret/app*" matches
// every path starting with "secret/app". A "+" stands for exactly one whole
// segment (which may be empty, as in Vault): "secret/+/config" matches
// "secret/team-a/config". "+*" is an error, as is an empty path or a NUL
// byte.
//
// Only one rule applies to a request path, as in Vault; capabilities of
// different matching rules never add up. An exact rule wins over any glob.
// Among globs, the one with the highest priority wins:
//
//  1. the first "+" or "*" later in the path is higher;
//  2. not ending in "*" is higher;
//  3. fewer "+" segments is higher;
//  4. longer is higher;
//  5. lexically greater is higher.
//
// A LIST request (and Capabilities) also tries the path without its
// trailing "/" first, so a rule for "secret/metadata/app" governs LIST of
// "secret/metadata/app/".
//
// # Merging policies
//
// NewACL merges every policy of a caller. Rules with the same path string
// from several policies (or the same one) are one rule: capabilities
// union, and a deny in any of them leaves deny alone. Parameter
// constraints accumulate and the smaller wrapping TTL bounds win, as in
// Vault. A policy named "root" makes a root ACL, which allows everything
// and reports ["root"] as its capabilities; the server must keep users
// from writing a policy of that name. "default" is an ordinary name here;
// DefaultPolicy is its text.
//
// # Identity templates
//
// A rule path may hold templates, rendered per caller from the Identity
// given to NewACL:
//
//	{{identity.entity.id}}                                      Identity.EntityID
//	{{identity.entity.name}}                                    Identity.EntityName
//	{{identity.metadata.<key>}}                                 Identity.Metadata[key] (coffer's short form)
//	{{identity.entity.metadata.<key>}}                          Identity.Metadata[key]
//	{{identity.entity.aliases.<mount accessor>.metadata.<key>}} Identity.Aliases[accessor][key]
//
// so one policy can give every Kubernetes namespace its own subtree:
//
//	path "secret/data/{{identity.metadata.service_account_namespace}}/*" {
//	  capabilities = ["read"]
//	}
//
// Spaces inside the braces are ignored. Any other template (Vault's group
// and time templates, alias id and name) is a parse error. A rule whose
// template has no value for the caller, or whose value is empty, contains
// "/", "*", "+", "..", a NUL byte, or is ".", is left out of that caller's
// ACL: it never matches, and it is not an error. So a rendered value can
// never widen a rule. (Vault allows "/" in rendered values unless configured
// otherwise; coffer never does.) As in Vault, this applies to deny rules
// too: a templated deny that cannot be rendered for a caller does not
// deny anything to that caller, so write deny rules without templates.
//
// # Evaluation
//
// Authorize checks one request as Vault's AllowOperation does: the
// applicable rule must grant the operation (and sudo, for a sudo-protected
// path); then wrapping TTL bounds; then, for create, read, update and patch,
// required, denied and allowed parameters. Parameter names are compared
// lowercased; string values match with a leading and/or trailing "*" glob;
// list values and comma-separated strings are checked element by element.
// Allowed is Authorize for a request without parameters. Capabilities
// answers sys/capabilities-self. HasAnyUnder says whether anything at or
// below a prefix could be granted, to filter listings.
//
// # Formatting
//
// (*Policy).String writes canonical HCL, the output of `coffer policy fmt`;
// parsing it gives back an equal Policy.
package policy
