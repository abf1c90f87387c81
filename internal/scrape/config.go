package scrape

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/config"
	yaml "go.yaml.in/yaml/v2"

	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/labels"
	"github.com/hearth-profiler/hearth/internal/limits"
	"github.com/hearth-profiler/hearth/internal/storage/bucket"
	"github.com/hearth-profiler/hearth/internal/tenant"
)

// Defaults of a configuration that leaves fields out.
const (
	DefaultScrapeInterval  = Duration(10 * time.Second)
	DefaultScrapeTimeout   = Duration(10 * time.Second)
	DefaultBodySizeLimit   = ByteSize(64 << 20)
	DefaultRefreshInterval = Duration(5 * time.Minute)
)

// Config is the scrape configuration, in the shape of Prometheus'
// (global, scrape_configs) with a Parca-like profiling_config per job.
// Load and LoadFile return it validated and with defaults filled in; a
// Config built in code must go through Validate before use.
type Config struct {
	Global        GlobalConfig    `yaml:"global,omitempty"`
	ScrapeConfigs []*ScrapeConfig `yaml:"scrape_configs,omitempty"`
	// Limits is the limits: section, the tenants' limits that replace
	// those of the flags; nil when the file has none. The server applies
	// it; scraping does not read it. It shares the file so that one
	// reload applies both.
	Limits *limits.Config `yaml:"limits,omitempty"`
	// Storage is the storage: section, where blocks are kept; nil when
	// the file has none. Unlike the rest of the file, the server reads
	// it once, at start-up, and refuses a reload that changes it.
	Storage *StorageConfig `yaml:"storage,omitempty"`
}

// StorageConfig is the storage: section of the configuration file.
type StorageConfig struct {
	// Bucket is the bucket of blocks; nil keeps them in the data
	// directory, under tenants/.
	Bucket *bucket.Config `yaml:"bucket,omitempty"`
}

// GlobalConfig holds the defaults of every job.
type GlobalConfig struct {
	// ScrapeInterval is how often each endpoint of each target is pulled.
	ScrapeInterval Duration `yaml:"scrape_interval,omitempty"`
	// ScrapeTimeout bounds one scrape; it defaults to 10s, or to
	// ScrapeInterval when that is shorter.
	ScrapeTimeout Duration `yaml:"scrape_timeout,omitempty"`
	// BodySizeLimit is the largest response read from one endpoint.
	BodySizeLimit ByteSize `yaml:"body_size_limit,omitempty"`
	// ExternalLabels are added to every scraped series that does not
	// already have a label of that name.
	ExternalLabels map[string]string `yaml:"external_labels,omitempty"`
}

// ScrapeConfig is one job: a set of targets scraped the same way.
type ScrapeConfig struct {
	// JobName names the job; it is the job label of its series and, unless
	// a target sets service_name, their service_name. Required and unique.
	JobName        string   `yaml:"job_name"`
	ScrapeInterval Duration `yaml:"scrape_interval,omitempty"`
	ScrapeTimeout  Duration `yaml:"scrape_timeout,omitempty"`
	// Scheme is http (the default) or https.
	Scheme string `yaml:"scheme,omitempty"`
	// Params are URL query parameters added to every endpoint's request.
	Params url.Values `yaml:"params,omitempty"`
	// Tenant stores the job's profiles under this tenant instead of
	// the default one (anonymous).
	Tenant        string          `yaml:"tenant,omitempty"`
	BodySizeLimit ByteSize        `yaml:"body_size_limit,omitempty"`
	StaticConfigs []*StaticConfig `yaml:"static_configs,omitempty"`
	FileSDConfigs []*FileSDConfig `yaml:"file_sd_configs,omitempty"`
	// HTTPClientConfig is Prometheus' HTTP client configuration
	// (basic_auth, authorization, oauth2, tls_config, proxy_url,
	// http_headers...), at the job's level as in Prometheus. Load starts
	// from config.DefaultHTTPClientConfig, so that follow_redirects and
	// enable_http2 are on unless written false; a ScrapeConfig built in
	// code should start from it too.
	HTTPClientConfig config.HTTPClientConfig `yaml:",inline"`
	ProfilingConfig  *ProfilingConfig        `yaml:"profiling_config,omitempty"`

	endpoints []Endpoint // resolved by validate
}

// plainScrapeConfig is ScrapeConfig without its UnmarshalYAML. It is named
// at the package level because yaml's errors name it (see yamlTypeNames).
type plainScrapeConfig ScrapeConfig

// UnmarshalYAML starts from Prometheus' HTTP client defaults, as
// Prometheus does, since an omitted follow_redirects or enable_http2 means
// true. Errors that stop decoding (a bad duration, tls_config or oauth2
// section) come without a line, so they are given the job's name.
func (sc *ScrapeConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*sc = ScrapeConfig{HTTPClientConfig: config.DefaultHTTPClientConfig}
	err := unmarshal((*plainScrapeConfig)(sc))
	if _, ok := err.(*yaml.TypeError); err == nil || ok {
		// yaml gathers type errors, which carry their line, from every
		// job; it only does so for a *yaml.TypeError as it is.
		return err
	}
	job := sc.JobName
	if job == "" {
		// job_name may come after the field that failed. Decoding it alone
		// reports every other field as unknown, which says nothing new.
		var named struct {
			JobName string `yaml:"job_name"`
		}
		_ = unmarshal(&named)
		job = named.JobName
	}
	if job == "" {
		return err
	}
	return fmt.Errorf("job %q: %w", job, err)
}

// StaticConfig is a list of targets that share labels; it is also one
// entry of a file_sd file.
type StaticConfig struct {
	// Targets are host:port addresses.
	Targets []string `yaml:"targets" json:"targets"`
	// Labels are added to the series of every target of the group.
	Labels map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
}

// FileSDConfig discovers targets from files in Prometheus' file_sd format.
type FileSDConfig struct {
	// Files are paths or globs (in the last path element) ending in
	// .json, .yml or .yaml.
	Files []string `yaml:"files"`
	// RefreshInterval re-reads the files even without a change
	// notification.
	RefreshInterval Duration `yaml:"refresh_interval,omitempty"`
}

// ProfilingConfig lists the pprof endpoints of a job's targets.
type ProfilingConfig struct {
	// PathPrefix is put before every endpoint's path, for services that
	// mount net/http/pprof under a prefix.
	PathPrefix string `yaml:"path_prefix,omitempty"`
	// PprofConfig holds the endpoints by name. Entries named like a
	// built-in endpoint change it; other names add endpoints.
	PprofConfig map[string]*PprofConfig `yaml:"pprof_config,omitempty"`
}

// PprofConfig is one pprof endpoint. Fields left out take the built-in
// endpoint's values, or for other names: enabled, not delta, no seconds.
type PprofConfig struct {
	Enabled *bool  `yaml:"enabled,omitempty"`
	Path    string `yaml:"path,omitempty"`
	// Delta says that the endpoint serves counts since the process
	// started (Go's allocs, mutex, block): Hearth stores the growth
	// between scrapes, and a target's first scrape only sets the baseline.
	// (Parca's field of the same name means something else: that
	// ?seconds= is added; here that is Seconds.)
	Delta *bool `yaml:"delta,omitempty"`
	// Seconds, when above 0, asks for a profile over that many seconds
	// (?seconds=N), as /debug/pprof/profile takes; the request may then
	// take Seconds plus scrape_timeout. process_cpu defaults to the scrape
	// interval, so that consecutive CPU profiles cover all the time.
	Seconds int `yaml:"seconds,omitempty"`
	// KeepSampleType keeps only these sample types of the profile.
	KeepSampleType []SampleTypeFilter `yaml:"keep_sample_type,omitempty"`
	// Kind tells Hearth what a contention profile measures: "mutex" or
	// "block" (Go's pprof format does not say). Pyroscope's kinds
	// mutex_count, mutex_duration, block_count and block_duration say the
	// same; other kinds are accepted and change nothing.
	Kind string `yaml:"kind,omitempty"`
}

// SampleTypeFilter names a sample type to keep, as in Parca's
// keep_sample_type.
type SampleTypeFilter struct {
	Type string `yaml:"type"`
}

// Endpoint is one pprof endpoint of a job with its defaults resolved.
type Endpoint struct {
	Name string
	// Path is the request path, path_prefix included, with any query
	// written in the configuration.
	Path    string
	Delta   bool
	Seconds int
	// Contention is what Kind says of a contention profile.
	Contention  ingest.Contention
	SampleTypes []string
}

// builtinEndpoint is an endpoint every job has unless disabled.
type builtinEndpoint struct {
	name string
	cfg  PprofConfig
}

// builtinEndpoints are the endpoints of Go's net/http/pprof, named as Parca
// names them. process_cpu's Seconds is filled from the scrape interval.
var builtinEndpoints = []builtinEndpoint{
	{"process_cpu", PprofConfig{Path: "/debug/pprof/profile"}},
	// Go's heap and allocs endpoints serve the same four sample types; the
	// heap keeps what is in use, allocs what was allocated, as deltas.
	{"memory", PprofConfig{Path: "/debug/pprof/heap", KeepSampleType: []SampleTypeFilter{{"inuse_objects"}, {"inuse_space"}}}},
	{"allocs", PprofConfig{Path: "/debug/pprof/allocs", Delta: ptr(true), KeepSampleType: []SampleTypeFilter{{"alloc_objects"}, {"alloc_space"}}}},
	{"goroutine", PprofConfig{Path: "/debug/pprof/goroutine"}},
	{"mutex", PprofConfig{Path: "/debug/pprof/mutex", Delta: ptr(true), Kind: "mutex"}},
	{"block", PprofConfig{Path: "/debug/pprof/block", Delta: ptr(true), Kind: "block"}},
}

func ptr[T any](v T) *T { return &v }

func builtin(name string) *builtinEndpoint {
	for i := range builtinEndpoints {
		if builtinEndpoints[i].name == name {
			return &builtinEndpoints[i]
		}
	}
	return nil
}

// Load parses and validates a configuration. Unknown fields are errors,
// reported with their line.
func Load(data []byte) (*Config, error) {
	cfg := &Config{}
	if err := yaml.UnmarshalStrict(data, cfg); err != nil {
		return nil, yamlError("parse config", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// LoadFile loads the configuration in path. Relative file names in it
// (file_sd files, credential, header and TLS files) are relative to path's
// directory.
func LoadFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	cfg, err := Load(data)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	cfg.setDirectory(filepath.Dir(path))
	return cfg, nil
}

func (c *Config) setDirectory(dir string) {
	if c.Storage != nil && c.Storage.Bucket != nil {
		c.Storage.Bucket.SetDirectory(dir)
	}
	for _, sc := range c.ScrapeConfigs {
		sc.HTTPClientConfig.SetDirectory(dir)
		for _, fc := range sc.FileSDConfigs {
			for i, f := range fc.Files {
				fc.Files[i] = config.JoinDir(dir, f)
			}
		}
	}
}

// yamlTypeNames turn the Go type names in yaml's errors into the names a
// user wrote.
var yamlTypeNames = strings.NewReplacer(
	"in type scrape.Config", "at the top level",
	"in type scrape.GlobalConfig", "in global",
	"in type scrape.plainScrapeConfig", "in a scrape config",
	"in type scrape.StaticConfig", "in static_configs",
	"in type scrape.FileSDConfig", "in file_sd_configs",
	"in type scrape.ProfilingConfig", "in profiling_config",
	"in type scrape.PprofConfig", "in a pprof_config endpoint",
	"in type scrape.SampleTypeFilter", "in keep_sample_type",
	"in type limits.Config", "in limits",
	"in type limits.Values", "in limits overrides",
	"in type scrape.StorageConfig", "in storage",
	"in type bucket.Config", "in storage.bucket",
	// Prometheus' basic_auth, tls_config and oauth2 all decode through a
	// type named plain.
	"in type config.plain", "in basic_auth, tls_config or oauth2",
	"in type config.Authorization", "in authorization",
	"in type config.Header", "in http_headers",
)

var (
	yamlUnknownField = regexp.MustCompile(`field (\S+) not found`)
	yamlFieldTwice   = regexp.MustCompile(`field (\S+) already set`)
)

// yamlError words an error of yaml.UnmarshalStrict for a user: the line,
// and field names as written.
func yamlError(doing string, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("%s: %w", doing, err)
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		m = yamlUnknownField.ReplaceAllString(m, `unknown field "$1"`)
		m = yamlFieldTwice.ReplaceAllString(m, `field "$1" set twice`)
		msgs[i] = yamlTypeNames.Replace(m)
	}
	return fmt.Errorf("%s: %s", doing, strings.Join(msgs, "; "))
}

// Validate checks c and fills in defaults: intervals, timeouts, scheme,
// tenant, and every built-in pprof endpoint in each job's pprof_config. It
// may be called again on its result.
func (c *Config) Validate() error {
	g := &c.Global
	if g.ScrapeInterval < 0 || g.ScrapeTimeout < 0 || g.BodySizeLimit < 0 {
		return errors.New("global: intervals, timeouts and sizes must not be negative")
	}
	if g.ScrapeInterval == 0 {
		g.ScrapeInterval = DefaultScrapeInterval
	}
	if g.ScrapeTimeout == 0 {
		g.ScrapeTimeout = min(DefaultScrapeTimeout, g.ScrapeInterval)
	}
	if g.ScrapeTimeout > g.ScrapeInterval {
		return fmt.Errorf("global: scrape_timeout %s is greater than scrape_interval %s", g.ScrapeTimeout, g.ScrapeInterval)
	}
	if g.BodySizeLimit == 0 {
		g.BodySizeLimit = DefaultBodySizeLimit
	}
	if err := validateLabels(g.ExternalLabels, false); err != nil {
		return fmt.Errorf("global: external_labels: %w", err)
	}
	if c.Limits != nil {
		if err := c.Limits.Validate(); err != nil {
			return err
		}
	}
	if c.Storage != nil && c.Storage.Bucket != nil {
		if err := c.Storage.Bucket.Validate(); err != nil {
			return err
		}
	}
	jobs := make(map[string]int, len(c.ScrapeConfigs))
	for i, sc := range c.ScrapeConfigs {
		if sc == nil {
			return fmt.Errorf("scrape_configs[%d]: empty entry", i)
		}
		if sc.JobName == "" {
			return fmt.Errorf("scrape_configs[%d]: job_name is required", i)
		}
		if j, ok := jobs[sc.JobName]; ok {
			return fmt.Errorf("scrape_configs[%d]: duplicate job_name %q (also scrape_configs[%d])", i, sc.JobName, j)
		}
		jobs[sc.JobName] = i
		if err := sc.validate(g); err != nil {
			return fmt.Errorf("job %q: %w", sc.JobName, err)
		}
	}
	return nil
}

func (sc *ScrapeConfig) validate(g *GlobalConfig) error {
	if !utf8.ValidString(sc.JobName) {
		return errors.New("job_name is not valid UTF-8")
	}
	if sc.ScrapeInterval < 0 || sc.ScrapeTimeout < 0 || sc.BodySizeLimit < 0 {
		return errors.New("intervals, timeouts and sizes must not be negative")
	}
	if sc.ScrapeInterval == 0 {
		sc.ScrapeInterval = g.ScrapeInterval
	}
	if sc.ScrapeTimeout == 0 {
		sc.ScrapeTimeout = min(g.ScrapeTimeout, sc.ScrapeInterval)
	}
	if sc.BodySizeLimit == 0 {
		sc.BodySizeLimit = g.BodySizeLimit
	}
	switch sc.Scheme {
	case "":
		sc.Scheme = "http"
	case "http", "https":
	default:
		return fmt.Errorf("scheme %q: want http or https", sc.Scheme)
	}
	id, err := tenant.Check(sc.Tenant)
	if err != nil {
		return fmt.Errorf("tenant %q is not a valid tenant ID (at most 150 bytes, no slashes or NUL, not . or ..)", sc.Tenant)
	}
	sc.Tenant = id
	for name := range sc.Params {
		if name == "" {
			return errors.New("params: empty parameter name")
		}
	}
	// yaml does not call the UnmarshalYAML of an inlined struct, where the
	// HTTP client would validate itself, so it is validated here, as
	// Prometheus' scrape config does. This also turns bearer_token(_file)
	// into an authorization of type Bearer.
	if err := sc.HTTPClientConfig.Validate(); err != nil {
		return err
	}
	// Prometheus takes any URL here; one without a scheme and host would
	// fail every scrape, so it fails the load instead.
	if u := sc.HTTPClientConfig.ProxyURL; u.URL != nil && u.String() != "" && (u.Scheme == "" || u.Host == "") {
		return fmt.Errorf("proxy_url %q: want scheme://host:port", u.Redacted())
	}
	for i, st := range sc.StaticConfigs {
		if st == nil {
			return fmt.Errorf("static_configs[%d]: empty entry", i)
		}
		if err := validateGroup(st, false); err != nil {
			return fmt.Errorf("static_configs[%d]: %w", i, err)
		}
	}
	for i, fc := range sc.FileSDConfigs {
		if fc == nil {
			return fmt.Errorf("file_sd_configs[%d]: empty entry", i)
		}
		if err := fc.validate(); err != nil {
			return fmt.Errorf("file_sd_configs[%d]: %w", i, err)
		}
	}
	if err := sc.resolveEndpoints(); err != nil {
		return err
	}
	if sc.ScrapeTimeout > sc.ScrapeInterval {
		for _, ep := range sc.endpoints {
			if ep.Seconds == 0 {
				return fmt.Errorf("scrape_timeout %s is greater than scrape_interval %s (allowed only when every endpoint takes seconds, as process_cpu does; %s does not)", sc.ScrapeTimeout, sc.ScrapeInterval, ep.Name)
			}
		}
	}
	return nil
}

func (fc *FileSDConfig) validate() error {
	if len(fc.Files) == 0 {
		return errors.New("files is empty")
	}
	for i, f := range fc.Files {
		ext := filepath.Ext(f)
		if ext != ".json" && ext != ".yml" && ext != ".yaml" {
			return fmt.Errorf("files[%d] %q: the name must end in .json, .yml or .yaml", i, f)
		}
		if strings.ContainsAny(filepath.Dir(f), "*?[") {
			return fmt.Errorf("files[%d] %q: a glob may only be in the last path element", i, f)
		}
		if _, err := filepath.Match(filepath.Base(f), ""); err != nil {
			return fmt.Errorf("files[%d] %q: %w", i, f, err)
		}
	}
	if fc.RefreshInterval < 0 {
		return errors.New("refresh_interval must not be negative")
	}
	if fc.RefreshInterval == 0 {
		fc.RefreshInterval = DefaultRefreshInterval
	}
	return nil
}

// validateGroup checks a target group's addresses and labels. Groups read
// from files may carry discovery metadata (__meta_*), which is shown in a
// target's discovered labels and never stored.
func validateGroup(g *StaticConfig, fromFile bool) error {
	for _, t := range g.Targets {
		if err := validateAddress(t); err != nil {
			return fmt.Errorf("target %q: %w", t, err)
		}
	}
	if err := validateLabels(g.Labels, fromFile); err != nil {
		return fmt.Errorf("labels: %w", err)
	}
	return nil
}

// validateAddress accepts host:port, where host is a name, an IPv4
// address or a bracketed IPv6 address.
func validateAddress(addr string) error {
	if strings.Contains(addr, "://") {
		return errors.New("want host:port without a scheme (set the job's scheme instead)")
	}
	if strings.ContainsAny(addr, "/?# \t\r\n") {
		return errors.New("want host:port without a path, query or spaces")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port: %v", strings.TrimPrefix(err.Error(), "address "+addr+": "))
	}
	if host == "" {
		return errors.New("want host:port: missing host")
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return fmt.Errorf("want host:port: port %q is not a number from 1 to 65535", port)
	}
	return nil
}

// validateLabels checks label names ([a-zA-Z_][a-zA-Z0-9_]*, not starting
// with __ unless meta allows __meta_*) and that values are UTF-8.
func validateLabels(ls map[string]string, meta bool) error {
	for _, name := range slices.Sorted(maps.Keys(ls)) {
		if !labels.ValidName(name) {
			return fmt.Errorf("invalid label name %q: must match [a-zA-Z_][a-zA-Z0-9_]*", name)
		}
		if strings.HasPrefix(name, "__") && !(meta && strings.HasPrefix(name, "__meta_")) {
			return fmt.Errorf("label name %q is reserved: names starting with __ are Hearth's own", name)
		}
		if !utf8.ValidString(ls[name]) {
			return fmt.Errorf("label %s: value is not valid UTF-8", name)
		}
	}
	return nil
}

// resolveEndpoints completes pprof_config with the built-in endpoints and
// fills sc.endpoints with what will be scraped, built-ins first in their
// order and then other names sorted.
func (sc *ScrapeConfig) resolveEndpoints() error {
	if sc.ProfilingConfig == nil {
		sc.ProfilingConfig = &ProfilingConfig{}
	}
	pc := sc.ProfilingConfig
	if pc.PathPrefix != "" {
		if !strings.HasPrefix(pc.PathPrefix, "/") {
			return fmt.Errorf("profiling_config: path_prefix %q must start with /", pc.PathPrefix)
		}
		if strings.ContainsAny(pc.PathPrefix, "?#") {
			return fmt.Errorf("profiling_config: path_prefix %q must not hold a query", pc.PathPrefix)
		}
		pc.PathPrefix = strings.TrimRight(pc.PathPrefix, "/")
	}
	if pc.PprofConfig == nil {
		pc.PprofConfig = map[string]*PprofConfig{}
	}
	var custom []string
	for name, pp := range pc.PprofConfig {
		if pp == nil {
			return fmt.Errorf("profiling_config: pprof_config %s: empty entry", name)
		}
		if builtin(name) == nil {
			custom = append(custom, name)
		}
	}
	slices.Sort(custom)
	sc.endpoints = sc.endpoints[:0]
	names := make([]string, 0, len(builtinEndpoints)+len(custom))
	for _, b := range builtinEndpoints {
		names = append(names, b.name)
	}
	names = append(names, custom...)
	for _, name := range names {
		pp := pc.PprofConfig[name]
		if pp == nil {
			pp = &PprofConfig{}
			pc.PprofConfig[name] = pp
		}
		ep, err := sc.resolveEndpoint(name, pp)
		if err != nil {
			return fmt.Errorf("profiling_config: pprof_config %s: %w", name, err)
		}
		if ep != nil {
			sc.endpoints = append(sc.endpoints, *ep)
		}
	}
	if len(sc.endpoints) == 0 {
		return errors.New("profiling_config: every pprof endpoint is disabled")
	}
	return nil
}

// resolveEndpoint fills pp's defaults in place and returns the endpoint, or
// nil when it is disabled.
func (sc *ScrapeConfig) resolveEndpoint(name string, pp *PprofConfig) (*Endpoint, error) {
	if !labels.ValidName(name) {
		return nil, errors.New("invalid name: must match [a-zA-Z_][a-zA-Z0-9_]*")
	}
	if b := builtin(name); b != nil {
		if pp.Path == "" {
			pp.Path = b.cfg.Path
		}
		if pp.Delta == nil && b.cfg.Delta != nil {
			pp.Delta = ptr(*b.cfg.Delta)
		}
		if pp.KeepSampleType == nil {
			pp.KeepSampleType = slices.Clone(b.cfg.KeepSampleType)
		}
		if pp.Kind == "" {
			pp.Kind = b.cfg.Kind
		}
		if name == "process_cpu" && pp.Seconds == 0 {
			pp.Seconds = max(1, int(time.Duration(sc.ScrapeInterval)/time.Second))
		}
	} else if pp.Path == "" {
		return nil, errors.New("path is required for an endpoint that is not built in")
	}
	if pp.Enabled == nil {
		pp.Enabled = ptr(true)
	}
	if pp.Delta == nil {
		pp.Delta = ptr(false)
	}
	if !strings.HasPrefix(pp.Path, "/") {
		return nil, fmt.Errorf("path %q must start with /", pp.Path)
	}
	if strings.Contains(pp.Path, "#") {
		return nil, fmt.Errorf("path %q must not hold a fragment", pp.Path)
	}
	if i := strings.IndexByte(pp.Path, '?'); i >= 0 {
		if _, err := url.ParseQuery(pp.Path[i+1:]); err != nil {
			return nil, fmt.Errorf("path %q: query: %w", pp.Path, err)
		}
	}
	if pp.Seconds < 0 {
		return nil, fmt.Errorf("seconds %d must not be negative", pp.Seconds)
	}
	if pp.Kind != "" && !labels.ValidName(pp.Kind) {
		return nil, fmt.Errorf("kind %q: must match [a-zA-Z_][a-zA-Z0-9_]*", pp.Kind)
	}
	var types []string
	for i, f := range pp.KeepSampleType {
		if f.Type == "" {
			return nil, fmt.Errorf("keep_sample_type[%d]: type is required", i)
		}
		types = append(types, f.Type)
	}
	if !*pp.Enabled {
		return nil, nil
	}
	return &Endpoint{
		Name: name, Path: sc.ProfilingConfig.PathPrefix + pp.Path,
		Delta: *pp.Delta, Seconds: pp.Seconds, Contention: ingest.ContentionOf(pp.Kind), SampleTypes: types,
	}, nil
}

// Endpoints returns the endpoints the job scrapes on each target, once
// validated: built-in ones first, then others by name.
func (sc *ScrapeConfig) Endpoints() []Endpoint { return slices.Clone(sc.endpoints) }
