package bpf

// The BPF object and its Go bindings are committed, so building Hearth needs
// no clang. After changing profile.bpf.c (or include/), run, with clang and
// llvm-strip installed:
//
//	go generate ./internal/agent/bpf
//
// The second step records the hash of the C sources that TestObjectUpToDate
// compares against. This file is part of that hash, so changing a flag below
// also asks for a regeneration.

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target amd64,arm64 -type lost_reason -cflags "-O2 -g -Wall -Werror" profile profile.bpf.c -- -Iinclude
//go:generate go run ./internal/gensum
