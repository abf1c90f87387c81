package s3test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hearth-profiler/hearth/internal/testfiles"
)

// TestCIInstallsTheSameVersion: .ci/run installs the versitygw that Start
// would, so that CI's tests never build another.
func TestCIInstallsTheSameVersion(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testfiles.Root(t), ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "go install "+VersitygwPackage+"\n") {
		t.Errorf(".ci/run does not run go install %s", VersitygwPackage)
	}
}

// TestStart starts a server, makes a bucket on it, and stops and restarts
// it on the same endpoint.
func TestStart(t *testing.T) {
	s := Start(t)
	if s.External() {
		t.Skip("the server is " + EnvEndpoint + "'s")
	}
	name := s.NewBucket(t)
	if c := s.Config(name); c["bucket"] != name || c["endpoint"] != s.Endpoint {
		t.Errorf("Config = %v", c)
	}
	s.Stop()
	s.Restart()
	s.Restart()
}
