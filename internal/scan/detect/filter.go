package detect

import (
	"bytes"
	"regexp"
)

// strongPlaceholders mark a value as a placeholder or documentation
// example for every rule: real credentials do not contain them except by
// a chance far below one in a thousand for a random token.
var strongPlaceholders = [][]byte{
	[]byte("example"), []byte("changeme"), []byte("change_me"), []byte("change-me"),
	[]byte("placeholder"), []byte("your_"), []byte("your-"), []byte("yourkey"), []byte("yourtoken"),
	[]byte("yoursecret"), []byte("yourpass"), []byte("<your"), []byte("xxxxx"), []byte("*****"),
	[]byte("....."), []byte("dummy"), []byte("redacted"), []byte("replace_me"), []byte("replaceme"),
	[]byte("replace-me"), []byte("insert_"), []byte("insert-"), []byte("notreal"), []byte("not_real"),
	[]byte("not-a-real"), []byte("fake_"), []byte("fake-"), []byte("${"), []byte("{{"), []byte("}}"),
	[]byte("%("), []byte("123456789"), []byte("abcdefgh"), []byte("<redacted>"), []byte("0000000000"),
	[]byte("1111111111"),
}

// Placeholder reports whether secret looks like a placeholder, a
// documentation example or a templating reference rather than a value.
func Placeholder(secret []byte) bool {
	low := bytes.ToLower(secret)
	for _, p := range strongPlaceholders {
		if bytes.Contains(low, p) {
			return true
		}
	}
	return false
}

// weakPlaceholders are test, template and reference markers that only
// generic values are checked for: a provider token with a fixed format
// may contain "test" by chance, a password that does is a test value.
var weakPlaceholders = [][]byte{
	[]byte("test"), []byte("sample"), []byte("fake"), []byte("mock"), []byte("foobar"), []byte("foo_bar"),
	[]byte("password"), []byte("passwd"), []byte("secret"), []byte("todo"), []byte("fixme"),
	[]byte("lorem"), []byte("ipsum"), []byte("hunter2"), []byte("qwerty"), []byte("letmein"),
	[]byte("getenv"), []byte("environ"), []byte("process.env"), []byte("env."), []byte("env["),
	[]byte("os."), []byte("vault:"), []byte("secretref"), []byte("secretkeyref"), []byte("arn:aws:"),
	[]byte("secretsmanager"), []byte("keyvault"), []byte("ref+"), []byte("sops:"), []byte("enc["),
	[]byte("$("), []byte("#{"), []byte("@{"), []byte("%{"), []byte("<%"), []byte("[["), []byte("]]"),
	[]byte("://"), []byte("\\\\"), []byte("...."), []byte("xxx"), []byte("***"), []byte("none"),
	[]byte("null"), []byte("nil"), []byte("undefined"), []byte("default"), []byte("required"),
}

// codeish matches values that are code rather than literals: dotted or
// called identifiers, indexing, casts, paths.
var codeish = regexp.MustCompile(`^(?:[A-Za-z_$][\w$]*(?:(?:\.|->|::)[A-Za-z_$][\w$]*)+|[A-Za-z_$][\w$.]*\(.*|.*[(){}\[\]].*|[~.]?/[\w./-]*|[A-Za-z]:\\.*|\$[A-Za-z_{(].*|%[A-Za-z_]+%|&[A-Za-z_].*|\*[A-Za-z_].*|!Ref.*|@[A-Za-z_].*)$`)

// excludedNames are identifier parts that name something about a secret
// rather than the secret itself (password_hash, token_url, secretName).
var excludedNames = []string{
	"hash", "type", "name", "url", "uri", "endpoint", "field", "length", "len", "count", "file", "path",
	"dir", "label", "format", "policy", "prompt", "regex", "pattern", "placeholder", "expir", "ttl",
	"max", "min", "header", "mode", "enabled", "required", "validat", "strength", "reset", "confirm",
	"rotation", "version", "arn", "kind", "_id", "-id", "keyid", "ref", "provider", "store", "param",
	"env", "var", "template", "input", "size", "algorithm", "issuer", "audience", "scope", "prefix",
	"suffix", "timeout", "lifetime", "generator", "manager", "helper", "description", "title", "message",
	"error", "metric", "salt", "policy", "selector", "mount", "volume", "class", "schema", "hint",
}

var identRE = regexp.MustCompile(`[\w.-]+`)

// genericValue reports whether a value assigned to a password/secret-like
// name in code or config is a credential: not a placeholder, not a test or
// reference value, not code, and shaped like a secret (a digit or a
// symbol, not only letters and not only digits). prefix is the text
// before the value (identifier and operator).
func genericValue(v, prefix []byte) bool {
	if len(v) < 6 {
		return false
	}
	low := bytes.ToLower(v)
	for _, p := range weakPlaceholders {
		if bytes.Contains(low, p) {
			return false
		}
	}
	if codeish.Match(v) {
		return false
	}
	if i := bytes.IndexByte(v, '='); i >= 0 && len(bytes.TrimLeft(v[i:], "=")) > 0 {
		return false // key=value, not a value (base64 padding is only at the end)
	}
	var letters, digits, symbols, upper int
	for _, c := range v {
		switch {
		case 'a' <= c && c <= 'z':
			letters++
		case 'A' <= c && c <= 'Z':
			letters++
			upper++
		case '0' <= c && c <= '9':
			digits++
		case c == '-' || c == '_' || c == '.':
		default:
			symbols++
		}
	}
	if digits == 0 && symbols == 0 {
		return false // words: identifiers, kebab names, type names
	}
	if letters == 0 && symbols == 0 {
		return false // numbers: ports, ids, sizes
	}
	if len(prefix) > 0 {
		ident := bytes.ToLower(identRE.Find(prefix))
		for _, x := range excludedNames {
			if bytes.Contains(ident, []byte(x)) {
				return false
			}
		}
		// password = password1 and the like
		if len(ident) > 0 && bytes.Contains(low, ident) {
			return false
		}
	}
	return true
}
