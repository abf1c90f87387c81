package bucket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/s3"
	yaml "go.yaml.in/yaml/v2"
)

// Types of bucket that Config knows.
const (
	TypeFilesystem = "filesystem"
	TypeS3         = "s3"
)

// Config says which bucket to keep blocks in: the storage.bucket section
// of the server's configuration file, in the shape of thanos-io/objstore's
// bucket configuration, whose keys config takes as they are:
//
//	storage:
//	  bucket:
//	    type: s3
//	    config:
//	      bucket: hearth
//	      endpoint: s3.eu-west-1.amazonaws.com
//	      region: eu-west-1
//
// For s3, config holds the keys of objstore's S3 provider (bucket,
// endpoint, region, access_key, secret_key, insecure, http_config, ...),
// and two of Hearth's: access_key_file and secret_key_file, files whose
// content is the key (instead of writing it in the configuration). With
// neither a key nor its file, the provider looks in the environment
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), then in
// ~/.aws/credentials, then asks the cloud's instance metadata.
//
// For filesystem, config holds directory: a Dir there, which fsyncs what
// it writes and renames it into place (objstore's own filesystem
// provider does neither).
//
// Relative paths (directory, access_key_file, secret_key_file) are
// relative to the configuration file's directory once SetDirectory has
// been called.
type Config struct {
	Type   string         `yaml:"type"`
	Config map[string]any `yaml:"config,omitempty"`
}

// keyFiles are Hearth's keys of an s3 config, each naming a file whose
// content replaces the provider's key beside it.
var keyFiles = map[string]string{"access_key_file": "access_key", "secret_key_file": "secret_key"}

// Validate checks the type and the provider's keys, without reading any
// file or reaching the store.
func (c *Config) Validate() error {
	switch c.Type {
	case TypeFilesystem:
		if _, err := c.filesystem(); err != nil {
			return err
		}
	case TypeS3:
		if _, err := c.s3(false); err != nil {
			return err
		}
	case "":
		return errors.New("storage.bucket: type is required: filesystem or s3")
	default:
		return fmt.Errorf("storage.bucket: unknown type %q: want filesystem or s3", c.Type)
	}
	return nil
}

// SetDirectory makes the relative paths of c relative to dir.
func (c *Config) SetDirectory(dir string) {
	keys := []string{"access_key_file", "secret_key_file"}
	if c.Type == TypeFilesystem {
		keys = []string{"directory"}
	}
	for _, k := range keys {
		if p, ok := c.Config[k].(string); ok && p != "" && !filepath.IsAbs(p) {
			c.Config[k] = filepath.Join(dir, p)
		}
	}
}

// filesystem returns the directory of a filesystem bucket.
func (c *Config) filesystem() (string, error) {
	for k := range c.Config {
		if k != "directory" {
			return "", fmt.Errorf("storage.bucket.config: unknown key %q for type filesystem: it takes directory", k)
		}
	}
	dir, _ := c.Config["directory"].(string)
	if dir == "" {
		return "", errors.New("storage.bucket.config: directory is required for type filesystem")
	}
	return dir, nil
}

// s3 returns the provider's configuration of an s3 bucket, with the key
// files read when read is set.
func (c *Config) s3(read bool) (s3.Config, error) {
	conf := make(map[string]any, len(c.Config))
	for k, v := range c.Config {
		conf[k] = v
	}
	files := map[string]string{}
	for fk, k := range keyFiles {
		v, ok := conf[fk]
		if !ok {
			continue
		}
		delete(conf, fk)
		name, _ := v.(string)
		if name == "" {
			return s3.Config{}, fmt.Errorf("storage.bucket.config: %s: want a file name", fk)
		}
		if _, ok := conf[k]; ok {
			return s3.Config{}, fmt.Errorf("storage.bucket.config: %s and %s are both set; keep one", k, fk)
		}
		files[k] = name
	}
	raw, err := yaml.Marshal(conf)
	if err != nil {
		return s3.Config{}, fmt.Errorf("storage.bucket.config: %w", err)
	}
	cfg := s3.DefaultConfig
	// DefaultConfig's map would be shared by every parse.
	cfg.PutUserMetadata = map[string]string{}
	if err := yaml.UnmarshalStrict(raw, &cfg); err != nil {
		// The lines are those of the section as re-encoded, not the
		// file's: leave them out.
		msg := strings.ReplaceAll(err.Error(), "in type s3.Config", "for type s3")
		msg = strings.ReplaceAll(msg, "yaml: unmarshal errors:\n  ", "")
		msg = yamlLine.ReplaceAllString(msg, "")
		return s3.Config{}, fmt.Errorf("storage.bucket.config: %s", msg)
	}
	if cfg.Bucket == "" {
		return s3.Config{}, errors.New("storage.bucket.config: bucket is required for type s3")
	}
	if cfg.Endpoint == "" {
		return s3.Config{}, errors.New("storage.bucket.config: endpoint is required for type s3 (s3.amazonaws.com for AWS)")
	}
	if read {
		for k, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				return s3.Config{}, fmt.Errorf("storage.bucket.config: %s_file: %w", k, err)
			}
			key := strings.TrimSpace(string(b))
			if key == "" {
				return s3.Config{}, fmt.Errorf("storage.bucket.config: %s_file %s is empty", k, name)
			}
			if k == "access_key" {
				cfg.AccessKey = key
			} else {
				cfg.SecretKey = key
			}
		}
	}
	return cfg, nil
}

// Equal says whether c and o describe the same bucket as written: the
// same type, and the same keys with the same values (key files are
// compared by name, not content). Nil is the default bucket.
func (c *Config) Equal(o *Config) bool {
	if c == nil || o == nil {
		return c == o
	}
	if c.Type != o.Type {
		return false
	}
	// Encoded, maps are in key order and NaNs equal.
	a, aerr := yaml.Marshal(c.Config)
	b, berr := yaml.Marshal(o.Config)
	return aerr == nil && berr == nil && bytes.Equal(a, b)
}

// secretKeys are the keys of a provider's configuration that MarshalYAML
// hides.
var secretKeys = []string{"secret_key", "session_token"}

// MarshalYAML writes c with its secrets hidden, as Prometheus writes its
// configuration: a configuration printed whole shows no key.
func (c Config) MarshalYAML() (any, error) {
	conf := maps.Clone(c.Config)
	for _, k := range secretKeys {
		if _, ok := conf[k]; ok {
			conf[k] = "<secret>"
		}
	}
	type plain Config
	return plain{Type: c.Type, Config: conf}, nil
}

// LogValue describes the bucket for logs: its type and where it is,
// never its credentials.
func (c *Config) LogValue() slog.Value {
	if c == nil {
		return slog.GroupValue(slog.String("type", TypeFilesystem))
	}
	attrs := []slog.Attr{slog.String("type", c.Type)}
	for _, k := range []string{"endpoint", "bucket", "directory"} {
		if v, ok := c.Config[k]; ok {
			attrs = append(attrs, slog.String(k, fmt.Sprint(v)))
		}
	}
	return slog.GroupValue(attrs...)
}

var yamlLine = regexp.MustCompile(`line \d+: `)

// Options configure Open.
type Options struct {
	// SpoolDir is where uploads to an object store are spooled (see
	// Objstore); "" means the system's temporary directory.
	SpoolDir string
	// Logger takes the provider's own messages; nil discards them.
	Logger *slog.Logger
	// Registerer, when set, takes an object store's operation metrics:
	// objstore's own (operations, failures, durations and bytes by
	// operation), prefixed hearth_, the ones Thanos', Loki's and
	// Pyroscope's dashboards read. A missing object is not a failure.
	Registerer prometheus.Registerer
}

// Open returns the bucket that c describes. It reads the key files but
// does not reach the store: Check does.
func Open(c *Config, opts Options) (Bucket, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	switch c.Type {
	case TypeFilesystem:
		dir, _ := c.filesystem()
		return NewDir(dir)
	default:
		cfg, err := c.s3(true)
		if err != nil {
			return nil, err
		}
		s3b, err := s3.NewBucketWithConfig(kitLogger{opts.Logger}, cfg, "hearth", nil)
		if err != nil {
			return nil, fmt.Errorf("storage.bucket: %w", err)
		}
		var b objstore.Bucket = s3b
		if opts.Registerer != nil {
			b = objstore.WrapWithMetrics(s3b, prometheus.WrapRegistererWithPrefix("hearth_", opts.Registerer), cfg.Bucket).
				WithExpectedErrs(s3b.IsObjNotFoundErr)
		}
		o, err := FromObjstore(b, ObjstoreOptions{
			Name:     fmt.Sprintf("%s on s3 endpoint %s", cfg.Bucket, cfg.Endpoint),
			SpoolDir: opts.SpoolDir,
		})
		if err != nil {
			return nil, err
		}
		if o.cond, err = newConditionalS3(cfg); err != nil {
			o.Close()
			return nil, fmt.Errorf("storage.bucket: %w", err)
		}
		o.condBucket = cfg.Bucket
		return o, nil
	}
}

// Check lists the root of b, stopping at its first entry, within
// timeout: a store that cannot be reached or does not answer, credentials
// it refuses and a bucket that does not exist are found at once, rather
// than at the first upload.
func Check(ctx context.Context, b Bucket, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	errFound := errors.New("found")
	err := b.Iter(ctx, "", func(string) error { return errFound })
	if errors.Is(err, errFound) {
		return nil
	}
	if err != nil && ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("bucket %s: no answer within %s", b.Name(), timeout)
	}
	return err
}

// kitLogger hands the go-kit log records of objstore's providers to a
// slog.Logger, at their level.
type kitLogger struct{ l *slog.Logger }

func (k kitLogger) Log(keyvals ...any) error {
	level, msg := slog.LevelInfo, ""
	var attrs []any
	for i := 0; i+1 < len(keyvals); i += 2 {
		key, v := fmt.Sprint(keyvals[i]), keyvals[i+1]
		switch key {
		case "level":
			switch fmt.Sprint(v) {
			case "debug":
				level = slog.LevelDebug
			case "warn":
				level = slog.LevelWarn
			case "error":
				level = slog.LevelError
			}
		case "msg":
			msg = fmt.Sprint(v)
		default:
			attrs = append(attrs, key, v)
		}
	}
	k.l.Log(context.Background(), level, msg, attrs...)
	return nil
}
