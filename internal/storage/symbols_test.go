package storage

import "testing"

func TestWithoutGoShapes(t *testing.T) {
	for in, want := range map[string]string{
		"slices.Sort[go.shape.[]int,go.shape.int]":                        "slices.Sort",
		"slices.pdqsortOrdered[go.shape.int]":                             "slices.pdqsortOrdered",
		"main.(*Set[go.shape.string]).Add":                                "main.(*Set).Add",
		"a.F[go.shape.struct { X []int }].func1[go.shape.map[string]int]": "a.F.func1",
		"main.main":           "main.main",
		"main.Index[int]":     "main.Index[int]",
		"broken[go.shape.int": "broken[go.shape.int",
		"":                    "",
	} {
		if got := WithoutGoShapes(in); got != want {
			t.Errorf("WithoutGoShapes(%q) = %q, want %q", in, got, want)
		}
	}
}
