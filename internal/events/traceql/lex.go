package traceql

import (
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// tokKind is the kind of a token.
type tokKind uint8

const (
	tEOF tokKind = iota
	tError
	tLBrace
	tRBrace
	tLParen
	tRParen
	tComma
	tEq  // =
	tNeq // !=
	tLt  // <
	tLte // <=
	tGt  // >
	tGte // >=
	tRe  // =~
	tNre // !~
	tAnd // &&
	tOr  // ||
	tNot // !
	tPipe
	// tStructural is one of TraceQL's spanset operators other than && and
	// || (>>, <<, ~, !>, !<, !>>, !<<, &>, &<, &>>, &<<, &~), which Hearth
	// does not support; the lexer names them so that the error can.
	tStructural
	tArith // + - * / % ^
	tString
	tInt
	tFloat
	tDuration
	tWord      // name, duration, true, error, ...
	tScoped    // span:name, trace:id, ...
	tAttr      // span.x, resource.x, .x
	tBadScope  // event.x, link.x, parent.x, instrumentation.x
	tUnknownCh // a character no token starts with
)

// token is one token of a filter.
type token struct {
	kind tokKind
	pos  int    // byte offset of its first byte
	end  int    // byte offset just past it
	text string // the source text, or the error message for tError
	// str is a string literal's value or an attribute's name; scope is an
	// attribute's scope ("span", "resource", "" for unscoped).
	str   string
	scope string
	i     int64
	f     float64
}

// describe names a token for "expected X, found Y" messages.
func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of input"
	case tString:
		return "string " + t.text
	}
	s := t.text
	if utf8.RuneCountInString(s) > 40 {
		s = string([]rune(s)[:40]) + "…"
	}
	return strconv.Quote(s)
}

// lexer turns a filter into tokens, one at a time.
type lexer struct {
	src string
	pos int
}

// isAttrRune says whether r may be part of an unquoted attribute name.
// Like Tempo, an unquoted name runs until whitespace or a character that
// could start the next token of a condition; everything else, dots, dashes
// and slashes included, is part of the name.
func isAttrRune(r rune) bool {
	if unicode.IsSpace(r) {
		return false
	}
	switch r {
	case '{', '}', '(', ')', '=', '~', '!', '<', '>', '&', '|', '^', ',', '"', utf8.RuneError:
		return false
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// skipSpace skips whitespace and comments (// to the end of the line, and
// /* ... */), which Tempo's lexer skips too. It returns an error token for
// an unterminated block comment.
func (l *lexer) skipSpace() *token {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			l.pos++
		case c == '/' && strings.HasPrefix(l.src[l.pos:], "//"):
			if i := strings.IndexByte(l.src[l.pos:], '\n'); i >= 0 {
				l.pos += i + 1
			} else {
				l.pos = len(l.src)
			}
		case c == '/' && strings.HasPrefix(l.src[l.pos:], "/*"):
			i := strings.Index(l.src[l.pos+2:], "*/")
			if i < 0 {
				return &token{kind: tError, pos: l.pos, end: len(l.src), text: "unterminated /* comment"}
			}
			l.pos += 2 + i + 2
		default:
			r, size := utf8.DecodeRuneInString(l.src[l.pos:])
			if r == utf8.RuneError || !unicode.IsSpace(r) {
				return nil
			}
			l.pos += size
		}
	}
	return nil
}

// ops are the operator tokens, longest first so that a prefix never wins.
var ops = []struct {
	text string
	kind tokKind
}{
	{"!>>", tStructural}, {"!<<", tStructural}, {"&>>", tStructural}, {"&<<", tStructural},
	{"&&", tAnd}, {"||", tOr}, {"!=", tNeq}, {"=~", tRe}, {"!~", tNre}, {"<=", tLte}, {">=", tGte},
	{">>", tStructural}, {"<<", tStructural}, {"!>", tStructural}, {"!<", tStructural},
	{"&>", tStructural}, {"&<", tStructural}, {"&~", tStructural},
	{"{", tLBrace}, {"}", tRBrace}, {"(", tLParen}, {")", tRParen}, {",", tComma},
	{"=", tEq}, {"<", tLt}, {">", tGt}, {"!", tNot}, {"|", tPipe}, {"~", tStructural},
	{"+", tArith}, {"-", tArith}, {"*", tArith}, {"/", tArith}, {"%", tArith}, {"^", tArith},
}

// next returns the next token.
func (l *lexer) next() token {
	if t := l.skipSpace(); t != nil {
		return *t
	}
	start := l.pos
	if l.pos >= len(l.src) {
		return token{kind: tEOF, pos: start, end: start}
	}
	c := l.src[l.pos]
	switch {
	case c == '"' || c == '`':
		return l.lexString()
	case isDigit(c) || c == '.' && l.pos+1 < len(l.src) && isDigit(l.src[l.pos+1]):
		return l.lexNumber(start)
	case c == '-' && l.pos+1 < len(l.src) && (isDigit(l.src[l.pos+1]) || l.src[l.pos+1] == '.' && l.pos+2 < len(l.src) && isDigit(l.src[l.pos+2])):
		l.pos++
		return l.lexNumber(start)
	case c == '.':
		l.pos++
		return l.lexAttr(start, "")
	case isLetter(c):
		return l.lexWord()
	}
	for _, op := range ops {
		if strings.HasPrefix(l.src[l.pos:], op.text) {
			l.pos += len(op.text)
			return token{kind: op.kind, pos: start, end: l.pos, text: op.text}
		}
	}
	r, size := utf8.DecodeRuneInString(l.src[l.pos:])
	l.pos += size
	return token{kind: tUnknownCh, pos: start, end: l.pos, text: string(r)}
}

// errTok makes an error token spanning from pos to the lexer's position.
func (l *lexer) errTok(pos int, msg string) token {
	return token{kind: tError, pos: pos, end: l.pos, text: msg}
}

// lexString reads a string literal with Go's syntax: "..." with Go's
// escapes, or `...` taken as written, as Tempo reads them.
func (l *lexer) lexString() token {
	start := l.pos
	q := l.src[l.pos]
	i := l.pos + 1
	for {
		if i >= len(l.src) {
			l.pos = len(l.src)
			return l.errTok(start, "unterminated string")
		}
		c := l.src[i]
		if c == q {
			break
		}
		if q == '"' && c == '\n' {
			l.pos = i
			return l.errTok(start, "newline in string")
		}
		if q == '"' && c == '\\' {
			i++
		}
		i++
	}
	l.pos = i + 1
	text := l.src[start:l.pos]
	s, err := strconv.Unquote(text)
	if err != nil {
		return l.errTok(start, "invalid string "+text+": bad escape sequence")
	}
	return token{kind: tString, pos: start, end: l.pos, text: text, str: s}
}

// lexNumber reads an integer, a float or a duration; l.pos is past a
// leading minus sign, if any.
func (l *lexer) lexNumber(start int) token {
	i := l.pos
	for i < len(l.src) && isDigit(l.src[i]) {
		i++
	}
	isFloat := false
	if i < len(l.src) && l.src[i] == '.' {
		isFloat = true
		i++
		for i < len(l.src) && isDigit(l.src[i]) {
			i++
		}
	}
	// A letter after the digits makes a duration (5m, 1.5s, 1h30m, 100µs);
	// an e followed by a digit or sign is a float's exponent.
	if i < len(l.src) && (l.src[i] == 'e' || l.src[i] == 'E') && i+1 < len(l.src) &&
		(isDigit(l.src[i+1]) || (l.src[i+1] == '+' || l.src[i+1] == '-') && i+2 < len(l.src) && isDigit(l.src[i+2])) {
		isFloat = true
		i += 2
		for i < len(l.src) && isDigit(l.src[i]) {
			i++
		}
	} else if i < len(l.src) && (isLetter(l.src[i]) || strings.HasPrefix(l.src[i:], "µ") || strings.HasPrefix(l.src[i:], "μ")) {
		for i < len(l.src) {
			if isLetter(l.src[i]) || isDigit(l.src[i]) || l.src[i] == '.' {
				i++
			} else if strings.HasPrefix(l.src[i:], "µ") || strings.HasPrefix(l.src[i:], "μ") {
				i += 2
			} else {
				break
			}
		}
		l.pos = i
		text := l.src[start:i]
		d, err := parseDuration(text)
		if err != "" {
			return l.errTok(start, "invalid duration "+strconv.Quote(text)+": "+err)
		}
		return token{kind: tDuration, pos: start, end: i, text: text, i: d}
	}
	l.pos = i
	text := l.src[start:i]
	if isFloat {
		f, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsInf(f, 0) {
			return l.errTok(start, "number "+text+" is out of range")
		}
		return token{kind: tFloat, pos: start, end: i, text: text, f: f}
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return l.errTok(start, "integer "+text+" is out of range: integers are 64-bit")
	}
	return token{kind: tInt, pos: start, end: i, text: text, i: n}
}

// durationUnits are the units a duration may use, as Tempo reads them: Go's
// and Prometheus' together.
var durationUnits = map[string]uint64{
	"ns": 1,
	"us": 1e3, "µs": 1e3, "μs": 1e3,
	"ms": 1e6,
	"s":  1e9,
	"m":  60e9,
	"h":  3600e9,
	"d":  24 * 3600e9,
	"w":  7 * 24 * 3600e9,
	"y":  365 * 24 * 3600e9,
}

// parseDuration reads a duration such as 500ms, 1.5s, 1h30m or -2m as
// nanoseconds. It returns a message on error, "" on success.
func parseDuration(s string) (int64, string) {
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var total uint64
	const limit = 1 << 63 // the magnitude of math.MinInt64
	for s != "" {
		i := 0
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		intPart := s[:i]
		frac := ""
		if i < len(s) && s[i] == '.' {
			j := i + 1
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			frac = s[i+1 : j]
			i = j
		}
		if intPart == "" && frac == "" {
			return 0, "a number must come before each unit"
		}
		u := i
		for u < len(s) && !isDigit(s[u]) && s[u] != '.' {
			u++
		}
		unit, ok := durationUnits[s[i:u]]
		if !ok {
			if i == u {
				return 0, "missing unit (ns, us, ms, s, m, h, d, w, y)"
			}
			return 0, "unknown unit " + strconv.Quote(s[i:u]) + " (want ns, us, ms, s, m, h, d, w or y)"
		}
		s = s[u:]
		var v uint64
		if intPart != "" {
			n, err := strconv.ParseUint(intPart, 10, 64)
			if err != nil || n > limit/unit {
				return 0, "out of range"
			}
			v = n * unit
		}
		// The fraction adds at most one unit; compute it exactly for
		// the digits that matter, as time.ParseDuration does.
		if frac != "" {
			var fv, scale uint64 = 0, 1
			for k := 0; k < len(frac) && scale <= 1e18/10; k++ {
				fv = fv*10 + uint64(frac[k]-'0')
				scale *= 10
			}
			add := uint64(float64(fv) * (float64(unit) / float64(scale)))
			if v > limit-add {
				return 0, "out of range"
			}
			v += add
		}
		if total > limit-v {
			return 0, "out of range"
		}
		total += v
	}
	if !neg && total > math.MaxInt64 {
		return 0, "out of range"
	}
	if neg {
		return int64(-total), "" // -(1<<63) wraps to math.MinInt64, as intended
	}
	return int64(total), ""
}

// formatDuration writes d in the largest unit that holds it exactly, so
// that parsing the text gives d back.
func formatDuration(d int64) string {
	var mag uint64
	sign := ""
	if d < 0 {
		sign = "-"
		mag = uint64(-d) // math.MinInt64 negates to itself, whose uint64 is right
	} else {
		mag = uint64(d)
	}
	if mag == 0 {
		return "0s"
	}
	for _, u := range []struct {
		name string
		ns   uint64
	}{{"h", 3600e9}, {"m", 60e9}, {"s", 1e9}, {"ms", 1e6}, {"us", 1e3}} {
		if mag%u.ns == 0 {
			return sign + strconv.FormatUint(mag/u.ns, 10) + u.name
		}
	}
	return sign + strconv.FormatUint(mag, 10) + "ns"
}

// scopes are the words that, followed by a dot, start a scoped attribute.
var scopes = map[string]bool{"span": true, "resource": true}

// badScopes are TraceQL's other attribute scopes, which Hearth does not
// keep apart (event, link) or cannot evaluate on one event (parent).
var badScopes = map[string]bool{"event": true, "link": true, "parent": true, "instrumentation": true}

// intrinsicScopes are the words that, followed by a colon, start a scoped
// intrinsic.
var intrinsicScopes = map[string]bool{"span": true, "trace": true, "event": true, "link": true, "instrumentation": true}

// lexWord reads a word, a scoped attribute (span.x) or a scoped intrinsic
// (span:name).
func (l *lexer) lexWord() token {
	start := l.pos
	for l.pos < len(l.src) && (isLetter(l.src[l.pos]) || isDigit(l.src[l.pos])) {
		l.pos++
	}
	w := l.src[start:l.pos]
	if l.pos < len(l.src) {
		switch l.src[l.pos] {
		case '.':
			if scopes[w] {
				l.pos++
				return l.lexAttr(start, w)
			}
			if badScopes[w] {
				l.pos++
				t := l.lexAttr(start, w)
				if t.kind == tAttr {
					t.kind = tBadScope
				}
				return t
			}
		case ':':
			if intrinsicScopes[w] {
				l.pos++
				s := l.pos
				for l.pos < len(l.src) && (isLetter(l.src[l.pos]) || isDigit(l.src[l.pos])) {
					l.pos++
				}
				if s == l.pos {
					return l.errTok(start, "expected an intrinsic name after "+w+":")
				}
				return token{kind: tScoped, pos: start, end: l.pos, text: l.src[start:l.pos], scope: w, str: l.src[s:l.pos]}
			}
		}
	}
	return token{kind: tWord, pos: start, end: l.pos, text: w}
}

// lexAttr reads an attribute name after its scope and dot: unquoted runs
// of name characters and double-quoted parts, in which \" and \\ are the
// only escapes (as in Tempo).
func (l *lexer) lexAttr(start int, scope string) token {
	var b strings.Builder
	for l.pos < len(l.src) {
		r, size := utf8.DecodeRuneInString(l.src[l.pos:])
		if r == '"' {
			q := l.pos
			l.pos++
			closed := false
			for l.pos < len(l.src) {
				c := l.src[l.pos]
				if c == '"' {
					l.pos++
					closed = true
					break
				}
				if c == '\\' {
					if l.pos+1 < len(l.src) && (l.src[l.pos+1] == '"' || l.src[l.pos+1] == '\\') {
						b.WriteByte(l.src[l.pos+1])
						l.pos += 2
						continue
					}
					l.pos++
					return l.errTok(l.pos-1, `invalid escape in quoted attribute name: only \" and \\ are allowed`)
				}
				b.WriteByte(c)
				l.pos++
			}
			if !closed {
				return l.errTok(q, "unterminated quoted attribute name")
			}
			continue
		}
		if !isAttrRune(r) {
			break
		}
		b.WriteString(l.src[l.pos : l.pos+size])
		l.pos += size
	}
	if b.Len() == 0 {
		what := "."
		if scope != "" {
			what = scope + "."
		}
		return l.errTok(start, "expected an attribute name after "+what)
	}
	return token{kind: tAttr, pos: start, end: l.pos, text: l.src[start:l.pos], scope: scope, str: b.String()}
}

// quoteAttrName writes an attribute name so that lexAttr reads it back:
// bare when it can be, else quoted.
func quoteAttrName(name string, unscoped bool) string {
	bare := name != ""
	for _, r := range name {
		if !isAttrRune(r) {
			bare = false
			break
		}
	}
	// After a bare dot, a digit would read as a number (.5).
	if unscoped && name != "" && isDigit(name[0]) {
		bare = false
	}
	if bare {
		return name
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(name) + `"`
}
