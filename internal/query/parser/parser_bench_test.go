package parser

import "testing"

func BenchmarkParse(b *testing.B) {
	benchmarks := []struct {
		name, input string
	}{
		{"alias", "cpu"},
		{"full_type", "memory:alloc_space:bytes:space:bytes"},
		{"equal", `cpu{service_name="checkout", env="prod", region="eu-west-1"}`},
		{"regexp", `cpu{service_name=~"checkout|cart", pod!~"test-.*", version!="v1.2.0"}`},
		{"escapes", `{a="tab\there", b='it\'s', c=` + "`raw\\d+`" + `}`},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bm.input)))
			for b.Loop() {
				if _, err := Parse(bm.input); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
