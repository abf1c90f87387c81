package parser

import (
	"errors"
	"fmt"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hearth-profiler/hearth/internal/labels"
	"github.com/hearth-profiler/hearth/internal/profile"
)

// Limits on what Parse accepts, so that a query cannot make the server do
// unbounded work before it even reaches storage.
const (
	maxSelectorBytes = 64 << 10
	maxMatchers      = 256
)

// Pos is a byte offset into a query.
type Pos int

// ParseError is a syntax error in a query, at a position.
type ParseError struct {
	Pos   Pos    // byte offset into Query
	Query string // the whole query
	Msg   string // what is wrong, in lower case
}

// Error formats the error as "line:col: message". Lines and columns start at
// 1; columns count bytes, as in Go's own error messages.
func (e *ParseError) Error() string {
	line, col := e.lineCol()
	return fmt.Sprintf("%d:%d: %s", line, col, e.Msg)
}

// lineCol converts Pos to a 1-based line and byte column.
func (e *ParseError) lineCol() (line, col int) {
	pos := min(max(int(e.Pos), 0), len(e.Query))
	before := e.Query[:pos]
	line = 1 + strings.Count(before, "\n")
	col = pos - (strings.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

// Parse parses a selector. Every error it returns is a *ParseError.
// Parse is safe for concurrent use.
func Parse(input string) (*Selector, error) {
	p := &parser{lex: lexer{input: input}}
	if len(input) > maxSelectorBytes {
		return nil, p.errorf(0, "selector is %d bytes, limit is %d", len(input), maxSelectorBytes)
	}
	if !utf8.ValidString(input) {
		for i, r := range input {
			if r == utf8.RuneError {
				if _, size := utf8.DecodeRuneInString(input[i:]); size == 1 {
					return nil, p.errorf(Pos(i), "invalid UTF-8 encoding")
				}
			}
		}
	}
	return p.parseSelector()
}

// parser is the state of one Parse call.
type parser struct {
	lex lexer
}

// errorf returns a *ParseError at pos.
func (p *parser) errorf(pos Pos, format string, args ...any) error {
	return &ParseError{Pos: pos, Query: p.lex.input, Msg: fmt.Sprintf(format, args...)}
}

// lineCol formats pos as line:col for messages that mention a second
// position.
func (p *parser) lineCol(pos Pos) string {
	line, col := (&ParseError{Pos: pos, Query: p.lex.input}).lineCol()
	return fmt.Sprintf("%d:%d", line, col)
}

// unexpected returns the error for finding t where want was expected. A
// malformed token reports its own problem instead.
func (p *parser) unexpected(t token, want string) error {
	if t.kind == tokError {
		return p.errorf(t.pos, "%s", t.msg)
	}
	return p.errorf(t.pos, "expected %s, found %s", want, t.describe())
}

// parseSelector parses a whole input.
//
//	selector = [ profile_type ] [ "{" [ matcher { "," matcher } [ "," ] ] "}" ] .
//
// At least one of the two parts must be present.
func (p *parser) parseSelector() (*Selector, error) {
	s := &Selector{}
	t := p.lex.next()
	switch t.kind {
	case tokEOF:
		return nil, p.errorf(0, "empty selector")
	case tokWord:
		typ, err := p.parseProfileType(t)
		if err != nil {
			return nil, err
		}
		s.ProfileType = typ
		t = p.lex.next()
		switch t.kind {
		case tokEOF:
			return s, nil
		case tokLeftBrace:
		default:
			return nil, p.unexpected(t, `"{" or end of input`)
		}
	case tokLeftBrace:
	default:
		return nil, p.unexpected(t, `profile type or "{"`)
	}
	ms, err := p.parseMatchers(t)
	if err != nil {
		return nil, err
	}
	s.Matchers = ms
	if t := p.lex.next(); t.kind != tokEOF {
		return nil, p.unexpected(t, "end of input")
	}
	return s, nil
}

// typeFields names the fields of a full profile type name.
var typeFields = [...]string{"name", "sample_type", "sample_unit", "period_type", "period_unit"}

// parseProfileType checks the word t and returns the full profile type name
// it stands for.
//
//	profile_type = alias | field ":" field ":" field ":" field ":" field .
//	alias        = "cpu" | "alloc_space" | ... (see profile.AliasNames) .
//	field        = { "a"…"z" | "A"…"Z" | "0"…"9" | "_" | "." | "-" } .
//
// The first three fields must not be empty.
func (p *parser) parseProfileType(t token) (string, error) {
	word := t.text
	if !strings.Contains(word, ":") {
		full, ok := profile.Alias(word)
		if !ok {
			return "", p.errorf(t.pos, "unknown profile type %q: want one of %s, or a full name %s",
				truncate(word), strings.Join(profile.AliasNames(), ", "), strings.Join(typeFields[:], ":"))
		}
		return full, nil
	}
	fields := strings.Split(word, ":")
	if len(fields) != len(typeFields) {
		pos := t.pos
		if len(fields) > len(typeFields) {
			// Point at the colon that starts the first extra field.
			for i := range len(typeFields) {
				pos += Pos(len(fields[i]) + 1)
			}
			pos--
		}
		return "", p.errorf(pos, "profile type %q has %d fields, want %d: %s",
			truncate(word), len(fields), len(typeFields), strings.Join(typeFields[:], ":"))
	}
	pos := t.pos
	for i, f := range fields[:3] {
		if f == "" {
			return "", p.errorf(pos, "empty %s in profile type %q", typeFields[i], truncate(word))
		}
		pos += Pos(len(f) + 1)
	}
	typ, err := profile.ParseType(word)
	if err != nil {
		return "", p.errorf(t.pos, "%v", err)
	}
	return typ.String(), nil
}

// parseMatchers parses a brace-enclosed matcher list; open is the "{".
//
//	matchers = "{" [ matcher { "," matcher } [ "," ] ] "}" .
func (p *parser) parseMatchers(open token) ([]*labels.Matcher, error) {
	var ms []*labels.Matcher
	t := p.lex.next()
	for {
		switch t.kind {
		case tokRightBrace:
			return ms, nil
		case tokWord:
		case tokEOF:
			return nil, p.errorf(t.pos, `expected label name or "}", found end of input (unclosed "{" at %s)`, p.lineCol(open.pos))
		default:
			return nil, p.unexpected(t, `label name or "}"`)
		}
		if len(ms) == maxMatchers {
			return nil, p.errorf(t.pos, "too many matchers: limit is %d", maxMatchers)
		}
		m, err := p.parseMatcher(t)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
		switch t = p.lex.next(); t.kind {
		case tokRightBrace:
			return ms, nil
		case tokComma:
			t = p.lex.next()
		case tokEOF:
			return nil, p.errorf(t.pos, `expected "," or "}", found end of input (unclosed "{" at %s)`, p.lineCol(open.pos))
		default:
			return nil, p.unexpected(t, `"," or "}"`)
		}
	}
}

// parseMatcher parses one matcher; name is its first token.
//
//	matcher    = label_name op string .
//	label_name = ( letter | "_" ) { letter | "_" | digit } .
//	letter     = "a"…"z" | "A"…"Z" .
//	digit      = "0"…"9" .
//	op         = "=" | "!=" | "=~" | "!~" .
func (p *parser) parseMatcher(name token) (*labels.Matcher, error) {
	if !labels.ValidName(name.text) {
		return nil, p.errorf(name.pos, "invalid label name %q: label names match [a-zA-Z_][a-zA-Z0-9_]*", truncate(name.text))
	}
	op := p.lex.next()
	if op.kind != tokOp {
		return nil, p.unexpected(op, fmt.Sprintf("operator (=, !=, =~, !~) after label name %q", name.text))
	}
	val := p.lex.next()
	if val.kind != tokString {
		return nil, p.unexpected(val, fmt.Sprintf("quoted string after %q", op.text))
	}
	if op.op == labels.MatchRegexp || op.op == labels.MatchNotRegexp {
		// Parse the expression on its own before labels.NewMatcher wraps it
		// in ^(?s:...)$: the wrapped form would accept a value such as
		// "a)|(b" and would quote the wrapper back in its errors.
		if _, err := syntax.Parse(val.value, syntax.Perl); err != nil {
			msg := err.Error()
			var serr *syntax.Error
			if errors.As(err, &serr) {
				msg = string(serr.Code)
				if serr.Expr != "" && serr.Expr != val.value {
					msg += ": " + strconv.Quote(truncate(serr.Expr))
				}
			}
			return nil, p.errorf(val.pos, "invalid regular expression %s: %s", strconv.Quote(truncate(val.value)), msg)
		}
	}
	m, err := labels.NewMatcher(op.op, name.text, val.value)
	if err != nil {
		return nil, p.errorf(val.pos, "%v", err)
	}
	return m, nil
}
