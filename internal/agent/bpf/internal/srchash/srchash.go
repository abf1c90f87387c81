// Package srchash hashes the inputs of the committed BPF object, so that a test
// can tell when the object is older than its source. Git does not keep file
// times, so the hash of the sources the object was built from is recorded at
// generation time and compared with the hash of the sources in the tree.
package srchash

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// Inputs lists the files, relative to the package directory and with forward
// slashes, that the BPF object depends on: the C program, the headers it
// includes from the package, and generate.go, whose go:generate line holds
// the compiler flags.
func Inputs(dir string) ([]string, error) {
	files := []string{"profile.bpf.c", "generate.go"}
	err := filepath.WalkDir(filepath.Join(dir, "include"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(files)
	return files, nil
}

// Sum returns the hex SHA-256 of the inputs in dir. Each file contributes its
// name and length before its content, so that moving bytes from one file to
// another changes the sum.
func Sum(dir string) (string, error) {
	files, err := Inputs(dir)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, name := range files {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			return "", err
		}
		h.Write([]byte(name))
		h.Write([]byte{0})
		h.Write([]byte(strconv.Itoa(len(b))))
		h.Write([]byte{0})
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
