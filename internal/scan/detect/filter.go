package detect

import (
	"bytes"
	"regexp"
	"strings"
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

// excludedNames are identifier words that name something about a secret
// rather than the secret itself (password_hash, token_url, secretName).
var excludedNames = map[string]bool{
	"hash": true, "hashed": true, "type": true, "name": true, "names": true, "url": true, "uri": true, "endpoint": true,
	"field": true, "length": true, "len": true, "count": true, "file": true, "path": true, "dir": true, "label": true,
	"format": true, "policy": true, "prompt": true, "regex": true, "pattern": true, "placeholder": true, "expiry": true,
	"expires": true, "expiration": true, "ttl": true, "max": true, "min": true, "header": true, "mode": true,
	"enabled": true, "required": true, "validator": true, "validation": true, "strength": true, "reset": true,
	"confirm": true, "confirmation": true, "rotation": true, "version": true, "arn": true, "kind": true, "id": true,
	"ids": true, "ref": true, "provider": true, "store": true, "param": true, "parameter": true, "env": true,
	"var": true, "template": true, "input": true, "size": true, "algorithm": true, "alg": true, "issuer": true,
	"audience": true, "scope": true, "scopes": true, "prefix": true, "suffix": true, "timeout": true,
	"lifetime": true, "generator": true, "manager": true, "helper": true, "description": true, "title": true,
	"message": true, "error": true, "metric": true, "salt": true, "selector": true, "mount": true, "volume": true,
	"class": true, "schema": true, "hint": true, "policies": true, "secretref": true,
}

var identRE = regexp.MustCompile(`[\w.-]+`)

// identWords splits an identifier into lowercase words at '_', '-', '.'
// and lower-to-upper case changes (dbPasswordHash: db, password, hash).
func identWords(ident []byte) []string {
	var words []string
	start := 0
	flush := func(end int) {
		if end > start {
			words = append(words, strings.ToLower(string(ident[start:end])))
		}
	}
	for i := 0; i < len(ident); i++ {
		c := ident[i]
		switch {
		case c == '_' || c == '-' || c == '.':
			flush(i)
			start = i + 1
		case i > start && 'A' <= c && c <= 'Z' && 'a' <= ident[i-1] && ident[i-1] <= 'z':
			flush(i)
			start = i
		}
	}
	flush(len(ident))
	return words
}

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
		raw := identRE.Find(prefix)
		for _, w := range identWords(raw) {
			if excludedNames[w] {
				return false
			}
		}
		ident := bytes.ToLower(raw)
		// password = password1 and the like
		if len(ident) > 0 && bytes.Contains(low, ident) {
			return false
		}
	}
	return true
}
