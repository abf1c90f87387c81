package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hearth-profiler/hearth/internal/bearer"
	"github.com/hearth-profiler/hearth/internal/tlsconfig"
)

// clientFlags are the flags every client of a server shares: how it
// checks the server and how it proves who it is.
type clientFlags struct {
	tokenFile string
	tls       tlsconfig.Client
}

func (f *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the token sent as 'Authorization: Bearer'; without it, $"+bearer.EnvVar+" is sent when set")
	fs.StringVar(&f.tls.CAFile, "tls.ca-file", "", "PEM certificates of the authorities the server's certificate must chain to, instead of the system's")
	fs.StringVar(&f.tls.CertFile, "tls.cert-file", "", "PEM client certificate, for a server that requires one; needs --tls.key-file")
	fs.StringVar(&f.tls.KeyFile, "tls.key-file", "", "PEM private key of --tls.cert-file")
	fs.StringVar(&f.tls.ServerName, "tls.server-name", "", "name the server's certificate must hold, when it is not the host of --server")
	fs.BoolVar(&f.tls.InsecureSkipVerify, "tls.insecure-skip-verify", false, "accept any server certificate (encrypted, but the server is not checked)")
}

// transport returns the token (nil when none is given) and an HTTP
// transport for server, with TLS as the flags say. logger hears of
// reloaded files.
func (f *clientFlags) transport(server string, logger *slog.Logger) (*bearer.Source, http.RoundTripper, error) {
	if f.tls.Set() && !strings.HasPrefix(server, "https://") {
		return nil, nil, fmt.Errorf("--tls.* flags are for an https:// --server, not %q", server)
	}
	tok, err := bearer.Find(f.tokenFile, os.Getenv, logger)
	if err != nil {
		return nil, nil, err
	}
	if tok != nil && exposed(server, f.tls.InsecureSkipVerify) {
		const warning = "the token is sent in clear text or to a server whose certificate is not checked: anyone on the path can read it; use https:// with a trusted certificate"
		if logger != nil {
			logger.Warn(warning, "server", server)
		} else {
			fmt.Fprintf(os.Stderr, "warning: %s (%s)\n", warning, server)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if tr.TLSClientConfig, err = f.tls.Config(logger); err != nil {
		return nil, nil, err
	}
	ht := &tlsHints{base: tr}
	if tr.TLSClientConfig.GetClientCertificate == nil {
		tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			ht.certAsked.Store(true)
			return &tls.Certificate{}, nil // none: the server decides
		}
	}
	return tok, ht, nil
}

// exposed says whether a token sent to server could be read on the way:
// over plain HTTP to a host other than this machine, or over TLS whose
// certificate is not verified.
func exposed(server string, skipVerify bool) bool {
	u, err := url.Parse(server)
	if err != nil {
		return false
	}
	if u.Scheme == "https" {
		return skipVerify
	}
	host := u.Hostname()
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// tlsHints adds to a failed request's error the flag that would fix it,
// when TLS is why it failed. A server that requires a client certificate
// and gets none closes the connection: with TLS 1.3 the client sees only
// a broken pipe, so whether the server asked for one is remembered.
type tlsHints struct {
	base      http.RoundTripper
	certAsked atomic.Bool
}

func (t *tlsHints) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err == nil {
		return resp, nil
	}
	var unknownCA x509.UnknownAuthorityError
	var badName x509.HostnameError
	switch {
	case t.certAsked.Load():
		return nil, fmt.Errorf("the server requires a client certificate: give --tls.cert-file and --tls.key-file (%w)", err)
	case errors.As(err, &unknownCA):
		return nil, fmt.Errorf("the server's certificate is signed by an authority this client does not trust: give its CA with --tls.ca-file (%w)", err)
	case errors.As(err, &badName):
		return nil, fmt.Errorf("the server's certificate is not for this host name: give the name it holds with --tls.server-name (%w)", err)
	}
	return nil, err
}

// client talks to a Hearth server's HTTP API.
type client struct {
	base   string
	tenant string
	token  *bearer.Source // nil: no token sent
	http   *http.Client
	// warnings are the Hearth-Warning headers of the last answer: what
	// it lacks (blocks left out because their data was damaged).
	warnings []string
}

func newClient(server, tenant string, timeout time.Duration, flags *clientFlags) (*client, error) {
	server = strings.TrimRight(server, "/")
	if !strings.HasPrefix(server, "http://") && !strings.HasPrefix(server, "https://") {
		return nil, fmt.Errorf("--server %q: want a URL like http://localhost:4040", server)
	}
	tok, tr, err := flags.transport(server, nil)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: timeout, Transport: tr}
	if tok != nil {
		hc.Transport = &bearer.Transport{Base: tr, Source: tok}
	}
	return &client{base: server, tenant: tenant, token: tok, http: hc}, nil
}

func (c *client) do(req *http.Request) ([]byte, error) {
	if c.tenant != "" {
		req.Header.Set("X-Scope-OrgID", c.tenant)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %s", req.Method, req.URL.Path, c.token.Redact(err.Error()))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read answer of %s: %w", req.URL.Path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, c.answerError(resp, body)
	}
	// Answers that are not JSON carry their warnings in headers.
	c.warnings = resp.Header.Values("Hearth-Warning")
	return body, nil
}

// answerError explains an answer that is not 2xx in one line. The server's
// own message is kept, less any copy of the token.
func (c *client) answerError(resp *http.Response, body []byte) error {
	var e struct {
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
	}
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		msg = e.Error
		if e.ErrorType != "" {
			msg = e.ErrorType + ": " + e.Error
		}
	}
	msg = c.token.Redact(oneLine(msg))
	said := ""
	if msg != "" {
		said = ", the server said: " + msg
	}
	tenant := "the default tenant"
	if c.tenant != "" {
		tenant = fmt.Sprintf("tenant %q", c.tenant)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized && c.token == nil:
		return fmt.Errorf("the server needs a token and none was sent: give it with --token-file FILE or the %s environment variable (%s%s)", bearer.EnvVar, resp.Status, said)
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("the server did not accept the token from %s: it is unknown, expired or mistyped (%s%s)", c.token.Origin(), resp.Status, said)
	case resp.StatusCode == http.StatusForbidden && c.token == nil:
		return fmt.Errorf("the server refused this in %s without a token: give one with --token-file FILE or the %s environment variable (%s%s)", tenant, bearer.EnvVar, resp.Status, said)
	case resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("the token from %s is not allowed to do this in %s (%s%s)", c.token.Origin(), tenant, resp.Status, said)
	case e.Error != "":
		return fmt.Errorf("server answered %d %s", resp.StatusCode, msg)
	}
	return errors.New("server answered " + resp.Status + ": " + msg)
}
