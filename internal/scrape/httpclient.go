package scrape

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Secret is a string that configuration dumps and logs print as
// "<secret>": passwords, tokens and private keys.
type Secret string

const secretMask = "<secret>"

// MarshalYAML hides the secret.
func (s Secret) MarshalYAML() (any, error) {
	if s == "" {
		return nil, nil
	}
	return secretMask, nil
}

// MarshalText hides the secret, for JSON.
func (s Secret) MarshalText() ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	return []byte(secretMask), nil
}

// String hides the secret, for logs and %v.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return secretMask
}

// HTTPClientConfig is how a job talks to its targets, with the field names
// of Prometheus' HTTP client configuration. Credentials read from files
// are read again for every request, so that a rotated token or password
// takes effect without a reload.
type HTTPClientConfig struct {
	// BasicAuth sends a user name and password.
	BasicAuth *BasicAuth `yaml:"basic_auth,omitempty"`
	// Authorization sends "Authorization: <type> <credentials>".
	Authorization *Authorization `yaml:"authorization,omitempty"`
	// BearerToken and BearerTokenFile are the older spelling of an
	// Authorization of type Bearer; Validate turns them into one.
	BearerToken     Secret `yaml:"bearer_token,omitempty"`
	BearerTokenFile string `yaml:"bearer_token_file,omitempty"`
	// TLSConfig configures https targets.
	TLSConfig TLSConfig `yaml:"tls_config,omitempty"`
	// ProxyURL sends every request through this HTTP proxy.
	ProxyURL string `yaml:"proxy_url,omitempty"`
	// ProxyFromEnvironment uses HTTP_PROXY, HTTPS_PROXY and NO_PROXY.
	ProxyFromEnvironment bool `yaml:"proxy_from_environment,omitempty"`
	// FollowRedirects follows 3xx answers; nil means true.
	FollowRedirects *bool `yaml:"follow_redirects,omitempty"`
	// EnableHTTP2 allows HTTP/2 to https targets; nil means true.
	EnableHTTP2 *bool `yaml:"enable_http2,omitempty"`
}

// BasicAuth is HTTP basic authentication.
type BasicAuth struct {
	Username     string `yaml:"username,omitempty"`
	UsernameFile string `yaml:"username_file,omitempty"`
	Password     Secret `yaml:"password,omitempty"`
	PasswordFile string `yaml:"password_file,omitempty"`
}

// Authorization is an Authorization header with a type and credentials.
type Authorization struct {
	// Type defaults to Bearer.
	Type            string `yaml:"type,omitempty"`
	Credentials     Secret `yaml:"credentials,omitempty"`
	CredentialsFile string `yaml:"credentials_file,omitempty"`
}

// TLSConfig configures TLS to https targets. PEM contents can be given
// inline (CA, Cert, Key) or as files.
type TLSConfig struct {
	CA                 string     `yaml:"ca,omitempty"`
	CAFile             string     `yaml:"ca_file,omitempty"`
	Cert               string     `yaml:"cert,omitempty"`
	CertFile           string     `yaml:"cert_file,omitempty"`
	Key                Secret     `yaml:"key,omitempty"`
	KeyFile            string     `yaml:"key_file,omitempty"`
	ServerName         string     `yaml:"server_name,omitempty"`
	InsecureSkipVerify bool       `yaml:"insecure_skip_verify,omitempty"`
	MinVersion         TLSVersion `yaml:"min_version,omitempty"`
	MaxVersion         TLSVersion `yaml:"max_version,omitempty"`
}

// TLSVersion is a TLS protocol version, written TLS10, TLS11, TLS12 or
// TLS13.
type TLSVersion uint16

var tlsVersions = map[string]TLSVersion{
	"TLS10": tls.VersionTLS10, "TLS11": tls.VersionTLS11,
	"TLS12": tls.VersionTLS12, "TLS13": tls.VersionTLS13,
}

// UnmarshalYAML reads TLS10..TLS13.
func (v *TLSVersion) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	tv, ok := tlsVersions[s]
	if !ok {
		return fmt.Errorf("unknown TLS version %q: want TLS10, TLS11, TLS12 or TLS13", s)
	}
	*v = tv
	return nil
}

// String returns the name UnmarshalYAML reads.
func (v TLSVersion) String() string {
	for name, tv := range tlsVersions {
		if tv == v {
			return name
		}
	}
	return fmt.Sprintf("TLSVersion(%d)", uint16(v))
}

// MarshalYAML writes the name UnmarshalYAML reads.
func (v TLSVersion) MarshalYAML() (any, error) {
	if v == 0 {
		return nil, nil
	}
	return v.String(), nil
}

// both says whether two alternatives that exclude each other are both set.
func both(a, b string) bool { return a != "" && b != "" }

// validate checks that alternatives are not mixed and folds the bearer
// token fields into Authorization, as Prometheus does.
func (c *HTTPClientConfig) validate() error {
	n := 0
	for _, set := range []bool{c.BasicAuth != nil, c.Authorization != nil, c.BearerToken != "" || c.BearerTokenFile != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return errors.New("at most one of basic_auth, authorization and bearer_token(_file) may be set")
	}
	if both(string(c.BearerToken), c.BearerTokenFile) {
		return errors.New("at most one of bearer_token and bearer_token_file may be set")
	}
	if c.BearerToken != "" || c.BearerTokenFile != "" {
		c.Authorization = &Authorization{Type: "Bearer", Credentials: c.BearerToken, CredentialsFile: c.BearerTokenFile}
		c.BearerToken, c.BearerTokenFile = "", ""
	}
	if a := c.Authorization; a != nil {
		if a.Type == "" {
			a.Type = "Bearer"
		}
		if strings.EqualFold(a.Type, "basic") {
			return errors.New(`authorization type "Basic" is not allowed: use basic_auth`)
		}
		if strings.ContainsAny(a.Type, " \t\r\n") {
			return fmt.Errorf("authorization type %q must be one word", a.Type)
		}
		if both(string(a.Credentials), a.CredentialsFile) {
			return errors.New("authorization: at most one of credentials and credentials_file may be set")
		}
	}
	if b := c.BasicAuth; b != nil {
		if both(b.Username, b.UsernameFile) {
			return errors.New("basic_auth: at most one of username and username_file may be set")
		}
		if both(string(b.Password), b.PasswordFile) {
			return errors.New("basic_auth: at most one of password and password_file may be set")
		}
	}
	t := &c.TLSConfig
	switch {
	case both(t.CA, t.CAFile):
		return errors.New("tls_config: at most one of ca and ca_file may be set")
	case both(t.Cert, t.CertFile):
		return errors.New("tls_config: at most one of cert and cert_file may be set")
	case both(string(t.Key), t.KeyFile):
		return errors.New("tls_config: at most one of key and key_file may be set")
	case (t.Cert != "" || t.CertFile != "") != (t.Key != "" || t.KeyFile != ""):
		return errors.New("tls_config: a client certificate needs both a cert and a key")
	case t.MinVersion != 0 && t.MaxVersion != 0 && t.MinVersion > t.MaxVersion:
		return fmt.Errorf("tls_config: min_version %s is above max_version %s", t.MinVersion, t.MaxVersion)
	}
	if c.ProxyURL != "" {
		if c.ProxyFromEnvironment {
			return errors.New("at most one of proxy_url and proxy_from_environment may be set")
		}
		u, err := url.Parse(c.ProxyURL)
		if err != nil {
			return fmt.Errorf("proxy_url: %w", err)
		}
		if u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("proxy_url %q: want scheme://host:port", c.ProxyURL)
		}
	}
	return nil
}

// setDirectory makes relative file names relative to dir, the directory of
// the configuration file.
func (c *HTTPClientConfig) setDirectory(dir string) {
	for _, p := range []*string{&c.BearerTokenFile, &c.TLSConfig.CAFile, &c.TLSConfig.CertFile, &c.TLSConfig.KeyFile} {
		*p = joinDir(dir, *p)
	}
	if b := c.BasicAuth; b != nil {
		b.UsernameFile = joinDir(dir, b.UsernameFile)
		b.PasswordFile = joinDir(dir, b.PasswordFile)
	}
	if a := c.Authorization; a != nil {
		a.CredentialsFile = joinDir(dir, a.CredentialsFile)
	}
}

func joinDir(dir, name string) string {
	if name == "" || filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(dir, name)
}

// fingerprint identifies the configuration, secrets included (hashed), so
// that a reload can tell whether a job's client changed.
func (c *HTTPClientConfig) fingerprint() string {
	h := sha256.New()
	write := func(ss ...string) {
		for _, s := range ss {
			fmt.Fprintf(h, "%d:%s;", len(s), s)
		}
	}
	if b := c.BasicAuth; b != nil {
		write("basic", b.Username, b.UsernameFile, string(b.Password), b.PasswordFile)
	}
	if a := c.Authorization; a != nil {
		write("auth", a.Type, string(a.Credentials), a.CredentialsFile)
	}
	write("bearer", string(c.BearerToken), c.BearerTokenFile)
	t := c.TLSConfig
	write("tls", t.CA, t.CAFile, t.Cert, t.CertFile, string(t.Key), t.KeyFile, t.ServerName,
		fmt.Sprint(t.InsecureSkipVerify, t.MinVersion, t.MaxVersion))
	write("proxy", c.ProxyURL, fmt.Sprint(c.ProxyFromEnvironment))
	write("flags", fmt.Sprint(boolOr(c.FollowRedirects, true), boolOr(c.EnableHTTP2, true)))
	return hex.EncodeToString(h.Sum(nil))
}

func boolOr(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// readSecret returns the inline value or the trimmed contents of file.
func readSecret(inline Secret, file, what string) (string, error) {
	if file == "" {
		return string(inline), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", what, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// newClient builds the HTTP client of c. The caller validated c.
func (c *HTTPClientConfig) newClient() (*http.Client, error) {
	tlsCfg, err := c.TLSConfig.build()
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		DialContext: (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		// A target is asked for a handful of endpoints per interval; keeping
		// their connections open across intervals of up to a few minutes
		// saves a handshake per scrape.
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       5 * time.Minute,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       tlsCfg,
		ForceAttemptHTTP2:     boolOr(c.EnableHTTP2, true),
	}
	if !boolOr(c.EnableHTTP2, true) {
		// A non-nil empty map is how net/http is told not to negotiate h2.
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	switch {
	case c.ProxyURL != "":
		u, err := url.Parse(c.ProxyURL)
		if err != nil {
			return nil, fmt.Errorf("proxy_url: %w", err)
		}
		tr.Proxy = http.ProxyURL(u)
	case c.ProxyFromEnvironment:
		tr.Proxy = http.ProxyFromEnvironment
	}
	client := &http.Client{Transport: &authTransport{cfg: c, next: tr}}
	if !boolOr(c.FollowRedirects, true) {
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return client, nil
}

// build returns the crypto/tls configuration. The CA is read now; a client
// certificate given as files is read at each handshake, so that renewed
// certificates are picked up.
func (t *TLSConfig) build() (*tls.Config, error) {
	cfg := &tls.Config{
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify,
		MinVersion:         uint16(t.MinVersion),
		MaxVersion:         uint16(t.MaxVersion),
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	ca := []byte(t.CA)
	if t.CAFile != "" {
		var err error
		if ca, err = os.ReadFile(t.CAFile); err != nil {
			return nil, fmt.Errorf("tls_config: read ca_file: %w", err)
		}
	}
	if len(ca) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, errors.New("tls_config: no PEM certificate in ca")
		}
		cfg.RootCAs = pool
	}
	switch {
	case t.Cert != "" && t.Key != "":
		cert, err := tls.X509KeyPair([]byte(t.Cert), []byte(t.Key))
		if err != nil {
			return nil, fmt.Errorf("tls_config: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case t.Cert != "" || t.CertFile != "":
		// Check the files now so that a typo fails the reload, not every
		// scrape.
		if _, err := t.loadCert(); err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return t.loadCert() }
	}
	return cfg, nil
}

func (t *TLSConfig) loadCert() (*tls.Certificate, error) {
	cert, key := []byte(t.Cert), []byte(t.Key)
	var err error
	if t.CertFile != "" {
		if cert, err = os.ReadFile(t.CertFile); err != nil {
			return nil, fmt.Errorf("tls_config: read cert_file: %w", err)
		}
	}
	if t.KeyFile != "" {
		if key, err = os.ReadFile(t.KeyFile); err != nil {
			return nil, fmt.Errorf("tls_config: read key_file: %w", err)
		}
	}
	c, err := tls.X509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("tls_config: client certificate: %w", err)
	}
	return &c, nil
}

// authTransport adds the configured credentials to each request.
type authTransport struct {
	cfg  *HTTPClientConfig
	next *http.Transport
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := t.cfg
	switch {
	case c.Authorization != nil:
		cred, err := readSecret(c.Authorization.Credentials, c.Authorization.CredentialsFile, "authorization credentials_file")
		if err != nil {
			return nil, err
		}
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", c.Authorization.Type+" "+cred)
	case c.BasicAuth != nil:
		user, err := readSecret(Secret(c.BasicAuth.Username), c.BasicAuth.UsernameFile, "basic_auth username_file")
		if err != nil {
			return nil, err
		}
		pass, err := readSecret(c.BasicAuth.Password, c.BasicAuth.PasswordFile, "basic_auth password_file")
		if err != nil {
			return nil, err
		}
		req = req.Clone(req.Context())
		req.SetBasicAuth(user, pass)
	}
	return t.next.RoundTrip(req)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// transport.
func (t *authTransport) CloseIdleConnections() { t.next.CloseIdleConnections() }
