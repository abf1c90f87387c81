package symbolize

import (
	"strings"
	"testing"
)

const sampleKallsyms = `ffffffff81000000 T _text
ffffffff81000000 T _stext
ffffffff81001000 T do_one_initcall
ffffffff81001800 D some_data
ffffffff81002000 t helper_fn
ffffffff81003000 W weak_fn
ffffffffc0a01000 t ext4_fill_super	[ext4]
ffffffffc0a00000 t ext4_init	[ext4]
`

func TestKallsyms(t *testing.T) {
	ks, err := parseKallsyms([]byte(sampleKallsyms))
	if err != nil {
		t.Fatal(err)
	}
	if ks.hidden {
		t.Fatal("hidden")
	}
	for _, tc := range []struct {
		addr         uint64
		name, module string
	}{
		{0xffffffff80ffffff, "", ""},
		{0xffffffff81000000, "_text", ""},
		{0xffffffff81000fff, "_text", ""},
		{0xffffffff81001900, "do_one_initcall", ""}, // data symbols do not end functions
		{0xffffffff81002000, "helper_fn", ""},
		{0xffffffff81003010, "weak_fn", ""},
		{0xffffffffc0a00010, "ext4_init", "ext4"}, // listed out of order
		{0xffffffffc0a01010, "ext4_fill_super", "ext4"},
		{0xffffffffc0a01000 + maxKernelSymbolBytes, "", ""},
	} {
		name, module, ok := ks.lookup(tc.addr)
		if name != tc.name || module != tc.module || ok != (tc.name != "") {
			t.Errorf("lookup(%#x): got %q %q %v, want %q %q", tc.addr, name, module, ok, tc.name, tc.module)
		}
	}
}

func TestKallsymsHidden(t *testing.T) {
	ks, err := parseKallsyms([]byte("0000000000000000 T _text\n0000000000000000 t ext4_init\t[ext4]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !ks.hidden {
		t.Error("all-zero addresses not taken as hidden")
	}
	if _, _, ok := ks.lookup(0xffffffff81000000); ok {
		t.Error("hidden table named an address")
	}
}

func TestKallsymsErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"ffffffff81000000 T", "kallsyms line 1: want address"},
		{"\nffffffff81000000 TT x", "kallsyms line 2: want address"},
		{"xyz T x", "kallsyms line 1: address"},
		{"ffffffff81000000 t x ext4", "kallsyms line 1: module"},
	} {
		_, err := parseKallsyms([]byte(tc.in))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("parseKallsyms(%q): got %v, want an error starting %q", tc.in, err, tc.want)
		}
	}
}
