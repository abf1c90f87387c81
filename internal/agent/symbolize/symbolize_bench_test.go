package symbolize

import (
	"debug/elf"
	"debug/gosym"
	"os"
	"reflect"
	"runtime"
	"testing"
)

// selfPCs returns n addresses in distinct Go functions of the running test
// binary, as runtime addresses.
func selfPCs(b *testing.B, n int) []uint64 {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	ef, err := elf.Open(exe)
	if err != nil {
		b.Skipf("test binary is not ELF: %v", err)
	}
	defer ef.Close()
	sec := ef.Section(".gopclntab")
	if sec == nil {
		b.Skip("test binary has no .gopclntab")
	}
	data, err := sec.Data()
	if err != nil {
		b.Fatal(err)
	}
	text := ef.Section(".text").Addr
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, text))
	if err != nil {
		b.Fatal(err)
	}
	// The load bias, in case the test binary is PIE.
	self := runtime.FuncForPC(reflect.ValueOf(BenchmarkUser).Pointer()).Name()
	fn := tab.LookupFunc(self)
	if fn == nil {
		b.Fatalf("%s not in the pclntab", self)
	}
	bias := uint64(reflect.ValueOf(BenchmarkUser).Pointer()) - fn.Entry
	if len(tab.Funcs) < n {
		b.Fatalf("only %d functions", len(tab.Funcs))
	}
	pcs := make([]uint64, n)
	for i := range pcs {
		f := tab.Funcs[i*len(tab.Funcs)/n]
		pcs[i] = bias + f.Entry + (f.End-f.Entry)/2
	}
	return pcs
}

// BenchmarkUser symbolizes a stack of 1,000 addresses in the test's own
// process, with its binary and mappings already cached.
func BenchmarkUser(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("needs /proc")
	}
	pcs := selfPCs(b, 1000)
	s := New(Options{})
	pid := uint32(os.Getpid())
	for _, f := range s.User(pid, pcs) {
		if f[len(f)-1].Reason != "" {
			b.Fatalf("unnamed: %+v", f)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		s.User(pid, pcs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(pcs)), "ns/addr")
}

// BenchmarkKernel symbolizes 1,000 kernel addresses from /proc/kallsyms.
func BenchmarkKernel(b *testing.B) {
	data, err := os.ReadFile("/proc/kallsyms")
	if err != nil {
		b.Skipf("no /proc/kallsyms: %v", err)
	}
	ks, err := parseKallsyms(data)
	if err != nil {
		b.Fatal(err)
	}
	if ks.hidden || len(ks.syms) < 1000 {
		b.Skip("kernel addresses hidden")
	}
	addrs := make([]uint64, 1000)
	for i := range addrs {
		addrs[i] = ks.syms[i*len(ks.syms)/len(addrs)].addr + 1
	}
	s := New(Options{})
	for _, f := range s.Kernel(addrs) {
		if f[0].Reason != "" {
			b.Fatalf("unnamed: %+v", f)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Kernel(addrs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(addrs)), "ns/addr")
}

// BenchmarkReadKallsyms reads this host's /proc/kallsyms as the
// symbolizer does; B/op is the garbage and the table together.
func BenchmarkReadKallsyms(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		f, err := os.Open("/proc/kallsyms")
		if err != nil {
			b.Skip(err)
		}
		ks, err := readKallsymsFrom(f)
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		if ks.hidden {
			b.Skip("kernel symbols hidden")
		}
	}
}
