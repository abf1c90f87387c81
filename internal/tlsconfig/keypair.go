// Package tlsconfig builds the TLS configurations of Hearth's server and
// clients from PEM files, and serves a certificate that follows its files:
// replaced on disk, it is picked up without a restart.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// DefaultCheckInterval is how often, at most, a key pair's files are
// looked at again: on a handshake, never more than once in this time.
const DefaultCheckInterval = 5 * time.Second

// KeyPair is a certificate and its private key, read from two PEM files
// and read again when either file changes. A new pair that cannot be
// loaded (half written, or a key that does not match) is logged, and the
// previous one stays in use.
type KeyPair struct {
	certFile, keyFile string
	every             time.Duration
	logger            *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	checked time.Time // last look at the files
	tried   [2]stamp  // the files as they were at the last load attempt
}

// stamp tells one version of a file from the next without reading it.
type stamp struct {
	modTime time.Time
	size    int64
}

func statFile(path string) (stamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}, err
	}
	return stamp{fi.ModTime(), fi.Size()}, nil
}

// LoadKeyPair reads the pair now, failing if either file is missing or
// the key does not match the certificate. every bounds how often the
// files are checked for changes; 0 is DefaultCheckInterval.
func LoadKeyPair(certFile, keyFile string, every time.Duration, logger *slog.Logger) (*KeyPair, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if every <= 0 {
		every = DefaultCheckInterval
	}
	k := &KeyPair{certFile: certFile, keyFile: keyFile, every: every, logger: logger}
	st, err := k.stat()
	if err != nil {
		return nil, err
	}
	cert, err := k.load()
	if err != nil {
		return nil, err
	}
	k.cert, k.tried, k.checked = cert, st, time.Now()
	k.logLoaded("TLS certificate loaded", cert)
	return k, nil
}

func (k *KeyPair) stat() ([2]stamp, error) {
	var st [2]stamp
	var err error
	if st[0], err = statFile(k.certFile); err != nil {
		return st, fmt.Errorf("--tls.cert-file: %w", err)
	}
	if st[1], err = statFile(k.keyFile); err != nil {
		return st, fmt.Errorf("--tls.key-file: %w", err)
	}
	return st, nil
}

func (k *KeyPair) load() (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(k.certFile)
	if err != nil {
		return nil, fmt.Errorf("--tls.cert-file: %w", err)
	}
	keyPEM, err := os.ReadFile(k.keyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls.key-file: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("--tls.cert-file %s and --tls.key-file %s are not a certificate and its key: %w", k.certFile, k.keyFile, err)
	}
	return &cert, nil
}

func (k *KeyPair) logLoaded(msg string, cert *tls.Certificate) {
	leaf := cert.Leaf
	if leaf == nil {
		return
	}
	attrs := []any{"cert_file", k.certFile, "subject", leaf.Subject.String(), "dns_names", leaf.DNSNames, "not_after", leaf.NotAfter.UTC()}
	if time.Now().After(leaf.NotAfter) {
		k.logger.Warn(msg+"; it has expired", attrs...)
		return
	}
	k.logger.Info(msg, attrs...)
}

// Certificate returns the pair in use, first loading the files again if
// they changed since the last look and that look is at least the check
// interval old.
func (k *KeyPair) Certificate() *tls.Certificate {
	k.mu.Lock()
	defer k.mu.Unlock()
	if now := time.Now(); now.Sub(k.checked) >= k.every {
		k.checked = now
		k.reload()
	}
	return k.cert
}

// reload loads the files if they changed since the last attempt; k.mu is
// held. Files are stamped before they are read, so that a write racing
// with the read is seen as a change at the next look.
func (k *KeyPair) reload() {
	st, err := k.stat()
	if err != nil {
		if st != k.tried {
			k.tried = st
			k.logger.Error("TLS certificate reload failed; keeping the previous certificate", "err", err)
		}
		return
	}
	if st == k.tried {
		return
	}
	k.tried = st
	cert, err := k.load()
	if err != nil {
		k.logger.Error("TLS certificate reload failed; keeping the previous certificate", "err", err)
		return
	}
	k.cert = cert
	k.logLoaded("TLS certificate reloaded", cert)
}

// GetCertificate is for tls.Config.GetCertificate.
func (k *KeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return k.Certificate(), nil
}

// GetClientCertificate is for tls.Config.GetClientCertificate.
func (k *KeyPair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return k.Certificate(), nil
}

// loadCAs reads the PEM certificates of file into a pool; flag names the
// file in errors.
func loadCAs(flag, file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: %s holds no PEM certificate", flag, file)
	}
	return pool, nil
}
