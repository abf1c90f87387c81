package main

import "testing"

// TestPrintable: names from profiles reach the terminal with their control
// characters and stray bytes escaped, and everything else as it was.
func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"main.(*Server).ServeHTTP":   "main.(*Server).ServeHTTP",
		"日本語.関数":                     "日本語.関数",
		"a\x1b]0;pwned\x07b":         `a\x1b]0;pwned\x07b`,
		"\x1b[2J":                    `\x1b[2J`,
		"tab\there\r\n":              `tab\x09here\x0d\x0a`,
		"del\x7f c1\u009b":           `del\x7f c1\x9b`,
		"bad\xffutf8":                `bad\xffutf8`,
		"ok \ufffd replacement char": "ok \ufffd replacement char",
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}
