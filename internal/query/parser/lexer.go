package parser

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hearth-profiler/hearth/internal/labels"
)

// tokenKind says what a token is.
type tokenKind int

const (
	tokEOF     tokenKind = iota
	tokError             // a malformed token; Msg says why
	tokIllegal           // a character that starts no token
	tokWord              // a run of [a-zA-Z0-9_.:-]: a profile type or a label name
	tokString            // a quoted string literal; Value holds it unquoted
	tokLeftBrace
	tokRightBrace
	tokComma
	tokOp // a matcher operator; Op says which
)

// token is one lexical token of a selector.
type token struct {
	kind  tokenKind
	pos   Pos    // byte offset of the token's first byte
	text  string // the token as written
	value string // the unquoted value of a tokString
	op    labels.MatchType
	msg   string // why a tokError is malformed
}

// describe names the token for "expected X, found Y" messages.
func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "end of input"
	case tokString:
		return "string " + strconv.Quote(truncate(t.value))
	}
	return strconv.Quote(truncate(t.text))
}

// truncate shortens s for error messages, at a rune boundary.
func truncate(s string) string {
	const maxBytes = 64
	if len(s) <= maxBytes {
		return s
	}
	i := maxBytes
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}

// lexer splits a selector into tokens on demand. It expects valid UTF-8.
type lexer struct {
	input string
	pos   int // byte offset of the next unread byte
}

// isSpace reports whether c is whitespace between tokens.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// isWordByte reports whether c may appear in a word. Words are wider than
// label names so that a name like service.name lexes as one token and gets
// a clear error instead of a confusing one about the dot.
func isWordByte(c byte) bool {
	return c == '_' || c == '.' || c == '-' || c == ':' ||
		(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// next returns the next token; after the end of input it keeps returning
// tokEOF.
func (l *lexer) next() token {
	for l.pos < len(l.input) && isSpace(l.input[l.pos]) {
		l.pos++
	}
	start := l.pos
	if start >= len(l.input) {
		return token{kind: tokEOF, pos: Pos(start)}
	}
	emit := func(kind tokenKind, n int) token {
		l.pos = start + n
		return token{kind: kind, pos: Pos(start), text: l.input[start:l.pos]}
	}
	emitOp := func(op labels.MatchType, n int) token {
		t := emit(tokOp, n)
		t.op = op
		return t
	}
	c := l.input[start]
	var c1 byte
	if start+1 < len(l.input) {
		c1 = l.input[start+1]
	}
	switch {
	case c == '{':
		return emit(tokLeftBrace, 1)
	case c == '}':
		return emit(tokRightBrace, 1)
	case c == ',':
		return emit(tokComma, 1)
	case c == '=' && c1 == '~':
		return emitOp(labels.MatchRegexp, 2)
	case c == '=':
		return emitOp(labels.MatchEqual, 1)
	case c == '!' && c1 == '=':
		return emitOp(labels.MatchNotEqual, 2)
	case c == '!' && c1 == '~':
		return emitOp(labels.MatchNotRegexp, 2)
	case c == '"' || c == '\'':
		return l.lexQuoted(c)
	case c == '`':
		return l.lexRaw()
	case isWordByte(c):
		n := 1
		for start+n < len(l.input) && isWordByte(l.input[start+n]) {
			n++
		}
		return emit(tokWord, n)
	}
	_, size := utf8.DecodeRuneInString(l.input[start:])
	return emit(tokIllegal, size)
}

// lexQuoted scans a string in double or single quotes. Escapes are Go's;
// a single-quoted string may hold any number of characters, as in PromQL,
// and there \' is an escape and \" is not.
//
//	string = `"` { char | escape } `"` | "'" { char | escape } "'" .
func (l *lexer) lexQuoted(quote byte) token {
	start := l.pos
	errorAt := func(pos int, msg string) token {
		l.pos = len(l.input) // nothing after a malformed token is trusted
		return token{kind: tokError, pos: Pos(pos), text: l.input[start:], msg: msg}
	}
	i := start + 1
	for {
		if i >= len(l.input) {
			return errorAt(start, "unterminated "+quoteName(quote))
		}
		switch c := l.input[i]; c {
		case quote:
			l.pos = i + 1
			t := token{kind: tokString, pos: Pos(start), text: l.input[start:l.pos]}
			v, err := unquote(t.text)
			if err != nil {
				// The loop has checked every escape, so this is our bug.
				panic(fmt.Sprintf("BUG: unquote %q: %v", t.text, err))
			}
			t.value = v
			return t
		case '\n':
			return errorAt(i, "newline in "+quoteName(quote)+" (write \\n, or use a backquoted string)")
		case '\\':
			_, _, tail, err := strconv.UnquoteChar(l.input[i:], quote)
			if err != nil {
				if i+1 >= len(l.input) {
					return errorAt(start, "unterminated "+quoteName(quote))
				}
				return errorAt(i, escapeError(l.input[i+1:], quote))
			}
			i = len(l.input) - len(tail)
		default:
			_, size := utf8.DecodeRuneInString(l.input[i:])
			i += size
		}
	}
}

// lexRaw scans a backquoted string, which has no escapes and may span lines.
//
//	string = "`" { char } "`" .
func (l *lexer) lexRaw() token {
	start := l.pos
	end := strings.IndexByte(l.input[start+1:], '`')
	if end < 0 {
		l.pos = len(l.input)
		return token{kind: tokError, pos: Pos(start), text: l.input[start:], msg: "unterminated backquoted string"}
	}
	l.pos = start + 1 + end + 1
	t := token{kind: tokString, pos: Pos(start), text: l.input[start:l.pos]}
	v, err := strconv.Unquote(t.text)
	if err != nil {
		panic(fmt.Sprintf("BUG: unquote %q: %v", t.text, err))
	}
	t.value = v
	return t
}

// unquote returns the value of a quoted string literal: strconv.Unquote for
// double quotes and backquotes; for single quotes, the same escapes as a
// double-quoted string except that \' replaces \".
func unquote(lit string) (string, error) {
	if lit[0] != '\'' {
		return strconv.Unquote(lit)
	}
	s := lit[1 : len(lit)-1]
	if !strings.ContainsAny(s, `\'`) {
		return s, nil
	}
	buf := make([]byte, 0, len(s))
	for len(s) > 0 {
		r, multibyte, tail, err := strconv.UnquoteChar(s, '\'')
		if err != nil {
			return "", err
		}
		if r < utf8.RuneSelf || !multibyte {
			buf = append(buf, byte(r))
		} else {
			buf = utf8.AppendRune(buf, r)
		}
		s = tail
	}
	return string(buf), nil
}

// escapeError explains why the escape sequence before s is invalid; s is
// what follows the backslash and is not empty.
func escapeError(s string, quote byte) string {
	r, _ := utf8.DecodeRuneInString(s)
	switch {
	case r == 'x':
		return `invalid escape sequence \x: want 2 hex digits`
	case r == 'u':
		return `invalid escape sequence \u: want 4 hex digits of a valid code point`
	case r == 'U':
		return `invalid escape sequence \U: want 8 hex digits of a valid code point`
	case r >= '0' && r <= '7':
		return `invalid octal escape sequence: want 3 octal digits, at most \377`
	case (r == '"' || r == '\'') && r != rune(quote):
		return fmt.Sprintf(`invalid escape sequence \%c in a %s`, r, quoteName(quote))
	case unicode.IsPrint(r):
		return fmt.Sprintf(`unknown escape sequence \%c`, r)
	}
	return fmt.Sprintf("unknown escape sequence: backslash followed by %q", r)
}

// quoteName names the kind of string a quote character starts.
func quoteName(quote byte) string {
	if quote == '\'' {
		return "single-quoted string"
	}
	return "double-quoted string"
}
