package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
)

// FuzzLookup feeds arbitrary strings to every lookup. Properties: nothing
// panics; a string is found if and only if it is exactly an issued token
// (or accessor, or id hash), and otherwise the error is ErrNotFound and
// nothing else; a Token holding the string never prints it.
func FuzzLookup(f *testing.F) {
	ctx := context.Background()
	s, err := New(ctx, newBackend(), Options{})
	if err != nil {
		f.Fatal(err)
	}
	tok, e, err := s.Create(ctx, CreateRequest{Policies: []string{"default"}})
	if err != nil {
		f.Fatal(err)
	}
	const explicit = "dev-root-id"
	_, re, err := s.Create(ctx, CreateRequest{ID: explicit, Policies: []string{"root"}})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{tok, explicit, e.ID, e.Accessor, tok[:len(tok)-1], "", "s.", "../salt", "id/" + e.ID, "\x00", "s.ÿÿÿ"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := s.Lookup(ctx, in)
		switch in {
		case tok, explicit:
			if err != nil || (got.ID != e.ID && got.ID != re.ID) {
				t.Fatalf("Lookup of an issued token: %v, %v", got, err)
			}
		default:
			if !errors.Is(err, ErrNotFound) || got != nil {
				t.Fatalf("Lookup(%q) = %v, %v; want ErrNotFound", in, got, err)
			}
		}
		got, err = s.LookupAccessor(ctx, in)
		if (in == e.Accessor || in == re.Accessor) != (err == nil) || (err != nil && !errors.Is(err, ErrNotFound)) {
			t.Fatalf("LookupAccessor(%q) = %v, %v", in, got, err)
		}
		got, err = s.LookupID(ctx, in)
		if (in == e.ID || in == re.ID) != (err == nil) || (err != nil && !errors.Is(err, ErrNotFound)) {
			t.Fatalf("LookupID(%q) = %v, %v", in, got, err)
		}

		secret := Token(in)
		js, _ := json.Marshal(secret)
		for _, out := range []string{fmt.Sprint(secret), fmt.Sprintf("%s", secret), fmt.Sprintf("%q", secret),
			fmt.Sprintf("%x", secret), fmt.Sprintf("%#v", secret), fmt.Sprintf("%10.3v", secret), string(js[1 : len(js)-1])} {
			if out != redacted {
				t.Fatalf("Token printed as %q", out)
			}
		}
	})
}
