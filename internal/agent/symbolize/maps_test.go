package symbolize

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const sampleMaps = `00400000-00401000 r--p 00000000 fe:00 1234                               /usr/bin/prog
00401000-0049e000 r-xp 00001000 fe:00 1234                               /usr/bin/prog
0049e000-00579000 r--p 0009e000 fe:00 1234                               /usr/bin/prog
00579000-0057a000 rw-p 00179000 fe:00 1234                               /usr/bin/prog
01a2c000-01a4d000 rw-p 00000000 00:00 0                                  [heap]
7f0b91600000-7f0b91628000 r--p 00000000 fe:00 5678                       /usr/lib/x86_64-linux-gnu/libc.so.6
7f0b91628000-7f0b917bd000 r-xp 00028000 fe:00 5678                       /usr/lib/x86_64-linux-gnu/libc.so.6
7f0b91800000-7f0b91900000 r-xp 00000000 00:00 0 
7f0b91a00000-7f0b91a10000 r-xp 00002000 fe:00 9999                       /opt/my app/lib (deleted)
7ffc0a1f2000-7ffc0a1f4000 r-xp 00000000 00:00 0                          [vdso]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
`

func TestParseMaps(t *testing.T) {
	got, err := parseMaps([]byte(sampleMaps))
	if err != nil {
		t.Fatal(err)
	}
	want := []mapping{
		{start: 0x401000, end: 0x49e000, offset: 0x1000, path: "/usr/bin/prog"},
		{start: 0x7f0b91628000, end: 0x7f0b917bd000, offset: 0x28000, path: "/usr/lib/x86_64-linux-gnu/libc.so.6"},
		{start: 0x7f0b91800000, end: 0x7f0b91900000},
		{start: 0x7f0b91a00000, end: 0x7f0b91a10000, offset: 0x2000, path: "/opt/my app/lib", deleted: true},
		{start: 0x7ffc0a1f2000, end: 0x7ffc0a1f4000, path: "[vdso]"},
		{start: 0xffffffffff600000, end: 0xffffffffff601000, path: "[vsyscall]"},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(mapping{})); diff != "" {
		t.Errorf("parseMaps (-want +got):\n%s", diff)
	}
	var modules []string
	for _, m := range got {
		modules = append(modules, m.module())
	}
	if want := []string{"prog", "libc.so.6", "[anon]", "lib", "[vdso]", "[vsyscall]"}; !cmp.Equal(modules, want) {
		t.Errorf("modules: got %q, want %q", modules, want)
	}

	maps := make([]procMapping, len(got))
	for i, m := range got {
		maps[i].mapping = m
	}
	for _, tc := range []struct {
		addr uint64
		want uint64 // start of the mapping found, 0 for none
	}{
		{0x400fff, 0},
		{0x401000, 0x401000},
		{0x49dfff, 0x401000},
		{0x49e000, 0},
		{0x7f0b91700000, 0x7f0b91628000},
		{0xffffffffff600000, 0xffffffffff600000},
		{0xffffffffffffffff, 0},
	} {
		m := findMapping(maps, tc.addr)
		if (m == nil && tc.want != 0) || (m != nil && m.start != tc.want) {
			t.Errorf("findMapping(%#x): got %+v, want the mapping at %#x", tc.addr, m, tc.want)
		}
	}
}

func TestParseMapsErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"00400000 r-xp 00000000 fe:00 1 /p", "maps line 1: address range"},
		{"\n00401000-00400000 r-xp 00000000 fe:00 1 /p", "maps line 2: empty address range"},
		{"0040000g-00401000 r-xp 00000000 fe:00 1 /p", "maps line 1: range start"},
		{"00400000-00401000 r-x 00000000 fe:00 1 /p", "maps line 1: permissions"},
		{"00400000-00401000 r-xp zz fe:00 1 /p", "maps line 1: offset"},
		{"00400000-00401000 r-xp 00000000", "maps line 1: want 5 fields"},
	} {
		_, err := parseMaps([]byte(tc.in))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("parseMaps(%q): got %v, want an error starting %q", tc.in, err, tc.want)
		}
	}
}
