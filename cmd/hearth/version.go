package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is the release, set when building one:
//
//	go build -ldflags "-X main.version=v0.4.0" ./cmd/hearth
//
// Without it the module version that Go stamps into the binary is used:
// the tag for `go install github.com/hearth-profiler/hearth/cmd/hearth@v0.4.0`,
// "(devel)" for a build in a checkout, with the commit beside it.
var version string

// versionName is the release or module version of this binary.
func versionName() string {
	v := version
	if info, ok := debug.ReadBuildInfo(); v == "" && ok {
		v = info.Main.Version
	}
	if v == "" {
		v = "(unknown)"
	}
	return v
}

// versionLine says which Hearth this binary is, in one line.
func versionLine() string {
	v := versionName()
	info, ok := debug.ReadBuildInfo()
	var rev, when, dirty string
	if ok {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = ", modified"
				}
			}
		}
	}
	line := "hearth " + v
	if rev != "" {
		line += fmt.Sprintf(" (commit %.12s%s, %s)", rev, dirty, when)
	}
	return line + fmt.Sprintf(" %s %s/%s", runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
