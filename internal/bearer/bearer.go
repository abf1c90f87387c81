// Package bearer finds the token a Hearth client sends, from a file or the
// HEARTH_TOKEN environment variable, and adds it to the client's requests
// as "Authorization: Bearer <token>". A token is a secret: nothing here
// puts it in an error or a log line.
package bearer

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
)

// EnvVar is the environment variable a token is taken from when no file
// is given.
const EnvVar = "HEARTH_TOKEN"

// Source gives the token to send. A token from a file follows the file:
// a long-running client sends the new token once the file is replaced.
type Source struct {
	file   string // "" for a token from the environment
	logger *slog.Logger

	mu      sync.Mutex
	token   string
	lastErr string // the last failed re-read, logged once
}

// Find returns the token of file when file is set, else of the variable
// EnvVar as getenv reads it; nil when neither is set. The token is read
// now, so that a missing or empty file fails at start.
func Find(file string, getenv func(string) string, logger *slog.Logger) (*Source, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if file != "" {
		tok, err := readFile(file)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		return &Source{file: file, logger: logger, token: tok}, nil
	}
	v := getenv(EnvVar)
	if v == "" {
		return nil, nil
	}
	tok, err := Parse([]byte(v))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvVar, err)
	}
	return &Source{logger: logger, token: tok}, nil
}

// Origin names where the token comes from, for messages: the flag and
// file, or the variable.
func (s *Source) Origin() string {
	if s.file != "" {
		return "--token-file " + s.file
	}
	return EnvVar
}

// Token returns the token, first reading the file again when it comes
// from one. A file that cannot be read, or holds no token, keeps the
// token read before: a file being replaced is briefly absent or empty.
func (s *Source) Token() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == "" {
		return s.token
	}
	tok, err := readFile(s.file)
	if err != nil {
		if msg := err.Error(); msg != s.lastErr {
			s.lastErr = msg
			s.logger.Warn("read the token file; keeping the token read before", "file", s.file, "err", err)
		}
		return s.token
	}
	s.lastErr = ""
	if tok != s.token {
		s.token = tok
		s.logger.Info("token file changed; sending its new token", "file", s.file)
	}
	return s.token
}

func readFile(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	tok, err := Parse(b)
	if err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	return tok, nil
}

// Parse trims the white space around a token and checks that what is
// left can be sent in a header: one word of printable ASCII. Its errors
// never hold the token.
func Parse(b []byte) (string, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "", errors.New("holds no token (the file or variable is empty)")
	}
	for i, c := range b {
		if c <= ' ' || c >= 0x7f {
			return "", fmt.Errorf("the token holds a space, a line break or a character outside printable ASCII at byte %d: a token is one word", i+1)
		}
	}
	return string(b), nil
}

// Transport adds "Authorization: Bearer <token>" to every request that
// has no Authorization header yet, and sends it with Base.
type Transport struct {
	Base   http.RoundTripper
	Source *Source
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if t.Source == nil || req.Header.Get("Authorization") != "" {
		return base.RoundTrip(req)
	}
	// A RoundTripper must not change the request it is given.
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+t.Source.Token())
	return base.RoundTrip(r)
}

// Redact replaces the token in s, for a message that may quote it (a
// server echoing a request).
func (s *Source) Redact(msg string) string {
	if s == nil {
		return msg
	}
	s.mu.Lock()
	tok := s.token
	s.mu.Unlock()
	if tok == "" {
		return msg
	}
	return strings.ReplaceAll(msg, tok, "[token]")
}
