package hearthproc

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// CorpusFile is one recorded CPU profile of the corpus, as the file holds it.
type CorpusFile struct {
	Name string
	Data []byte
}

// ReadCorpusCPU reads dir/cpu-*.pb.gz in name order.
func ReadCorpusCPU(dir string) ([]CorpusFile, error) {
	names, err := filepath.Glob(filepath.Join(dir, "cpu-*.pb.gz"))
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("corpus %s: no cpu-*.pb.gz (run from the repository's root, or give -corpus)", dir)
	}
	slices.Sort(names)
	out := make([]CorpusFile, 0, len(names))
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		out = append(out, CorpusFile{Name: name, Data: b})
	}
	return out, nil
}
