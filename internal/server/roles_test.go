package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hearth-profiler/hearth/internal/server"
)

// TestTargetChecked: an unknown role, and a role of a shared bucket
// without one, stop the start with a line that says so; a querier
// refuses scrape jobs, which would be writes.
func TestTargetChecked(t *testing.T) {
	dir := t.TempDir()
	scrapeFile := filepath.Join(dir, "scrape.yaml")
	bucketDir := filepath.Join(dir, "bucket")
	if err := os.WriteFile(scrapeFile, []byte("storage:\n  bucket:\n    type: filesystem\n    config: {directory: "+bucketDir+"}\n"+
		"scrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['127.0.0.1:1']\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		target, file, want string
	}{
		{"compactor", "", `--target="compactor": want all, ingester or querier`},
		{"querier", "", "--target=querier needs a bucket shared with the other instances"},
		{"ingester", "", "--target=ingester needs a bucket shared with the other instances"},
		{"querier", scrapeFile, "scrape_configs: a querier takes no writes"},
	} {
		cfg := server.DefaultConfig()
		cfg.DataDir = t.TempDir()
		cfg.SelfProfileInterval = 0
		cfg.Target = c.target
		cfg.ConfigFile = c.file
		s, err := server.New(cfg, nil)
		if err == nil {
			s.Close()
			t.Errorf("--target=%s with config %q started", c.target, c.file)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("--target=%s with config %q: %v; want it to say %q", c.target, c.file, err, c.want)
		}
	}
}
