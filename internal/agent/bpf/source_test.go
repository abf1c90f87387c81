package bpf

import (
	"testing"

	"github.com/hearth-profiler/hearth/internal/agent/bpf/internal/srchash"
)

// TestObjectUpToDate fails when the committed BPF object was built from other
// sources than those in the tree, which file times cannot tell after a git
// checkout.
func TestObjectUpToDate(t *testing.T) {
	sum, err := srchash.Sum(".")
	if err != nil {
		t.Fatal(err)
	}
	if sum != sourceSHA256 {
		files, _ := srchash.Inputs(".")
		t.Fatalf("the committed BPF object is older than its sources %v (hash %s, object built from %s): run `go generate ./internal/agent/bpf` with clang and llvm-strip installed, and commit the result", files, sum, sourceSHA256)
	}
}
