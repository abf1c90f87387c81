// Package parser parses Hearth's selector language, which names the series a
// query reads: a profile type, label matchers, or both.
//
//	cpu{service_name="checkout", region=~"eu-.*"}
//	memory:alloc_space:bytes:space:bytes{env!="dev"}
//	{service_name="checkout"}
//
// The grammar, in EBNF, with whitespace (space, tab, newline, carriage
// return) allowed between tokens:
//
//	selector     = [ profile_type ] [ "{" [ matcher { "," matcher } [ "," ] ] "}" ] .
//	profile_type = alias | field ":" field ":" field ":" field ":" field .
//	alias        = "cpu" | "alloc_space" | "inuse_space" | "goroutine" | ... .
//	field        = { "a"…"z" | "A"…"Z" | "0"…"9" | "_" | "." | "-" } .
//	matcher      = label_name op string .
//	label_name   = ( letter | "_" ) { letter | "_" | digit } .
//	letter       = "a"…"z" | "A"…"Z" .
//	digit        = "0"…"9" .
//	op           = "=" | "!=" | "=~" | "!~" .
//	string       = `"` … `"` | "'" … "'" | "`" … "`" .
//
// A selector has at least one of its two parts, so the empty input is an
// error; a caller that means "every series" passes "{}". A full profile type
// is name:sample_type:sample_unit:period_type:period_unit, whose first three
// fields are not empty; an alias stands for a full name (see
// profile.AliasNames). Strings use Go's escapes; a single-quoted string may
// hold many characters, as in PromQL, and takes \' where a double-quoted one
// takes \". Regular expressions are RE2, anchored at both ends.
//
// Parse returns a *Selector whose String method prints the canonical form:
// the full type name, then the matchers in the order written with
// double-quoted values. Parsing the canonical form gives the same Selector
// back.
//
//	sel, err := parser.Parse(`cpu{service_name="checkout"}`)
//	if err != nil {
//		return err // a *parser.ParseError, which prints as "line:col: message"
//	}
//	fmt.Println(sel.ProfileType) // process_cpu:cpu:nanoseconds:cpu:nanoseconds
//	fmt.Println(sel)             // process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="checkout"}
//
// Every error Parse returns is a *ParseError with the byte offset of the
// problem. Inputs over 64 KiB or with more than 256 matchers are rejected.
//
// Parse keeps no state between calls and is safe for concurrent use. A
// Selector is not modified after Parse returns it, so it may be shared by
// readers.
package parser
