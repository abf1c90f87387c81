package bearer_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/http/httpguts"

	"github.com/hearth-profiler/hearth/internal/bearer"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestFind(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	write(t, file, "  from-file\n")
	for _, c := range []struct {
		name   string
		file   string
		env    map[string]string
		want   string // "" for no source
		origin string
	}{
		{"file, trimmed", file, nil, "from-file", "--token-file " + file},
		{"the flag wins over the variable", file, map[string]string{bearer.EnvVar: "from-env"}, "from-file", "--token-file " + file},
		{"variable", "", map[string]string{bearer.EnvVar: " from-env\n"}, "from-env", bearer.EnvVar},
		{"neither", "", nil, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := bearer.Find(c.file, env(c.env), nil)
			if err != nil {
				t.Fatal(err)
			}
			if c.want == "" {
				if s != nil {
					t.Fatalf("got a source from %s, want none", s.Origin())
				}
				return
			}
			if got := s.Token(); got != c.want {
				t.Errorf("token %q, want %q", got, c.want)
			}
			if got := s.Origin(); got != c.origin {
				t.Errorf("origin %q, want %q", got, c.origin)
			}
		})
	}
}

// TestFindErrors: a token that cannot be sent fails with a reason, and the
// reason never quotes the token.
func TestFindErrors(t *testing.T) {
	dir := t.TempDir()
	const secret = "s3cret-part"
	for _, c := range []struct {
		name    string
		content string
		env     string
		want    string
	}{
		{"missing file", "", "", "--token-file: open"},
		{"empty file", " \n", "", "holds no token"},
		{"two lines", secret + "\n" + secret + "2\n", "", "line break"},
		{"space inside", secret + " x", "", "a token is one word"},
		{"variable with a line break", "", secret + "\r\nX-Evil: 1", bearer.EnvVar + ": the token holds"},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := ""
			if c.env == "" {
				file = filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
				if c.name != "missing file" {
					write(t, file, c.content)
				}
			}
			_, err := bearer.Find(file, env(map[string]string{bearer.EnvVar: c.env}), nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows the token: %v", err)
			}
		})
	}
}

// TestTransport checks the header on a real server, and that a replaced
// file changes the token sent while an emptied or removed one keeps the
// last good token, logged once without the token.
func TestTransport(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Authorization"))
		mu.Unlock()
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "token")
	write(t, file, "first\n")
	var logs bytes.Buffer
	src, err := bearer.Find(file, env(nil), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &bearer.Transport{Source: src}}
	send := func() {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if req.Header.Get("Authorization") != "" {
			t.Error("the transport changed the caller's request")
		}
	}
	send()
	write(t, file, "second")
	send()
	write(t, file, "")
	send()
	send()
	os.Remove(file)
	send()
	write(t, file, "third\n")
	send()
	want := []string{"Bearer first", "Bearer second", "Bearer second", "Bearer second", "Bearer second", "Bearer third"}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("headers sent:\n%q\nwant\n%q", got, want)
	}
	if n := strings.Count(logs.String(), "keeping the token read before"); n != 2 {
		t.Errorf("%d warnings for an empty then a missing file, want 2:\n%s", n, logs.String())
	}
	for _, tok := range []string{"first", "second", "third"} {
		if strings.Contains(logs.String(), tok) {
			t.Errorf("the log shows token %q:\n%s", tok, logs.String())
		}
	}
}

func TestTransportKeepsAuthorization(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Get("Authorization") }))
	defer srv.Close()
	src, err := bearer.Find("", env(map[string]string{bearer.EnvVar: "tok"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Authorization", "Basic abc")
	resp, err := (&http.Client{Transport: &bearer.Transport{Source: src}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got != "Basic abc" {
		t.Errorf("Authorization %q, want the request's own", got)
	}
}

func TestRedact(t *testing.T) {
	src, err := bearer.Find("", env(map[string]string{bearer.EnvVar: "abc123"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := src.Redact("bad token abc123 (abc123)"); got != "bad token [token] ([token])" {
		t.Errorf("Redact: %q", got)
	}
	var none *bearer.Source
	if got := none.Redact("abc123"); got != "abc123" {
		t.Errorf("nil Redact: %q", got)
	}
}

var parseError = regexp.MustCompile(`^(holds no token \(the file or variable is empty\)|the token holds a space, a line break or a character outside printable ASCII at byte [0-9]+: a token is one word)$`)

// FuzzParse: a token is accepted trimmed and as one printable word, and
// an error never holds the token.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"abc", " abc\n", "", "a b", "a\r\nb", "\x00", "tok\xff", "eyJhbGciOi.J9.x-_~+/="} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, err := bearer.Parse(b)
		if err != nil {
			// Fixed text and a position only: nothing of the input.
			if !parseError.MatchString(err.Error()) {
				t.Fatalf("error %q is not one of Parse's fixed messages", err)
			}
			return
		}
		if tok == "" || tok != strings.TrimSpace(tok) {
			t.Fatalf("accepted %q", tok)
		}
		for _, c := range []byte(tok) {
			if c <= ' ' || c >= 0x7f {
				t.Fatalf("accepted %q with byte %#x", tok, c)
			}
		}
		if !httpguts.ValidHeaderFieldValue("Bearer " + tok) {
			t.Fatalf("accepted %q, which cannot be sent in a header", tok)
		}
	})
}
