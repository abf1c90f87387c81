package tlsconfig

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Server says where a server's TLS files are. The zero value serves
// cleartext.
type Server struct {
	// CertFile and KeyFile hold the server's certificate (with any
	// intermediates after it) and its private key, PEM; both or neither.
	CertFile, KeyFile string
	// ClientCAFile, when set, holds the PEM certificates of the
	// authorities that sign client certificates: a client must present
	// one they signed.
	ClientCAFile string
	// MinVersion is the oldest TLS version accepted, "1.2" or "1.3"; ""
	// is 1.2.
	MinVersion string
	// CheckInterval bounds how often the certificate files are checked
	// for changes; 0 is DefaultCheckInterval.
	CheckInterval time.Duration
}

// Enabled says whether any TLS file is given.
func (s Server) Enabled() bool {
	return s.CertFile != "" || s.KeyFile != "" || s.ClientCAFile != ""
}

// Config loads the files and returns the server's TLS configuration, or
// nil when TLS is off. The errors name the flags of `hearth server`.
func (s Server) Config(logger *slog.Logger) (*tls.Config, error) {
	minVersion, err := ParseVersion(s.MinVersion)
	if err != nil {
		return nil, fmt.Errorf("--tls.min-version: %w", err)
	}
	if !s.Enabled() {
		return nil, nil
	}
	if s.CertFile == "" && s.KeyFile == "" {
		return nil, errors.New("--tls.client-ca-file needs --tls.cert-file and --tls.key-file: client certificates are checked only over TLS")
	}
	if err := bothOrNeither(s.CertFile, s.KeyFile); err != nil {
		return nil, err
	}
	kp, err := LoadKeyPair(s.CertFile, s.KeyFile, s.CheckInterval, logger)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: minVersion, GetCertificate: kp.GetCertificate}
	if s.ClientCAFile != "" {
		if cfg.ClientCAs, err = loadCAs("--tls.client-ca-file", s.ClientCAFile); err != nil {
			return nil, err
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

func bothOrNeither(certFile, keyFile string) error {
	switch {
	case certFile == "" && keyFile == "":
		return errors.New("TLS needs --tls.cert-file and --tls.key-file")
	case certFile == "":
		return errors.New("--tls.key-file is set without --tls.cert-file: give both or neither")
	case keyFile == "":
		return errors.New("--tls.cert-file is set without --tls.key-file: give both or neither")
	}
	return nil
}

// ParseVersion reads a TLS version, "1.2" or "1.3"; "" is 1.2. Older
// versions are not offered: they are deprecated (RFC 8996).
func ParseVersion(v string) (uint16, error) {
	switch v {
	case "", "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("%q: want 1.2 or 1.3", v)
}

// Client says how a client checks its server and proves itself. The zero
// value verifies the server against the system's authorities.
type Client struct {
	// CAFile holds the PEM certificates of the authorities the server's
	// certificate must chain to, instead of the system's.
	CAFile string
	// CertFile and KeyFile hold a client certificate and its key, PEM,
	// for servers that require one; both or neither. They are read again
	// when they change, as a server's are.
	CertFile, KeyFile string
	// ServerName is the name the server's certificate must hold, when it
	// is not the host of the URL (an IP address, or a tunnel).
	ServerName string
	// InsecureSkipVerify accepts any server certificate: the connection
	// is encrypted but the server is not authenticated.
	InsecureSkipVerify bool
	// CheckInterval bounds how often the certificate files are checked
	// for changes; 0 is DefaultCheckInterval.
	CheckInterval time.Duration
}

// Set says whether any TLS option is given.
func (c Client) Set() bool {
	return c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" || c.ServerName != "" || c.InsecureSkipVerify
}

// Config loads the files and returns the client's TLS configuration. The
// errors name the clients' flags.
func (c Client) Config(logger *slog.Logger) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // the user asked for it by flag
	}
	var err error
	if c.CAFile != "" {
		if cfg.RootCAs, err = loadCAs("--tls.ca-file", c.CAFile); err != nil {
			return nil, err
		}
	}
	if c.CertFile != "" || c.KeyFile != "" {
		if err := bothOrNeither(c.CertFile, c.KeyFile); err != nil {
			return nil, err
		}
		kp, err := LoadKeyPair(c.CertFile, c.KeyFile, c.CheckInterval, logger)
		if err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = kp.GetClientCertificate
	}
	return cfg, nil
}
