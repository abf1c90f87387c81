package traceql

import (
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/hearth-profiler/hearth/internal/events"
)

// Limits on what Parse accepts, so that a filter cannot make the server do
// unbounded work before it reads any event.
const (
	maxFilterBytes = 64 << 10
	maxConditions  = 1024
	maxDepth       = 64 // nesting of parentheses and !
)

// ParseError is a filter that could not be parsed or does not type-check,
// with where the problem is.
type ParseError struct {
	// Line and Column locate the problem, both from 1; Column counts
	// characters (Unicode code points) from the start of the line, which
	// is what an editor shows for text that is not all ASCII.
	Line, Column int
	// Offset is the same place as a byte offset into the filter.
	Offset int
	// Msg says what is wrong, in lower case.
	Msg string
}

// Error formats the error as "line:column: message".
func (e *ParseError) Error() string {
	return fmt.Sprintf("%d:%d: %s", e.Line, e.Column, e.Msg)
}

// Filter is a parsed TraceQL span filter. A Filter is not modified after
// Parse returns it; its methods are safe for concurrent use.
type Filter struct {
	root expr // nil for { }
	eval evaluator
	cols events.Columns
	// pool holds *scratch for Match; slots and memos size them.
	pool          sync.Pool
	slots, memos  int
	canonicalText string
}

// Parse reads a filter: `{ }` or `{ conditions }` (see the package
// documentation for what a condition may be). Every error it returns is a
// *ParseError. Parse is safe for concurrent use.
func Parse(src string) (*Filter, error) {
	p := &parser{lex: lexer{src: src}}
	if len(src) > maxFilterBytes {
		return nil, p.errorf(0, "filter is %d bytes, limit is %d", len(src), maxFilterBytes)
	}
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRuneInString(src[i:])
		if r == utf8.RuneError && size == 1 {
			return nil, p.errorf(i, "invalid UTF-8")
		}
		i += size
	}
	p.advance()
	root, err := p.parseQuery()
	if err != nil {
		return nil, err
	}
	f := &Filter{root: root}
	if root != nil {
		c := compiler{}
		f.eval = c.compile(root)
		f.slots, f.memos = c.slots, c.memos
	}
	f.cols = f.columns()
	var b strings.Builder
	b.WriteString("{ ")
	if root != nil {
		root.write(&b)
		b.WriteByte(' ')
	}
	b.WriteByte('}')
	f.canonicalText = b.String()
	return f, nil
}

// String is the canonical text of the filter: one line, single spaces,
// fields by their short names (name, duration, status, kind,
// statusMessage), strings double-quoted, durations in their largest exact
// unit, comparisons with the field on the left, && and || lists flattened
// and parenthesized only where they nest. Parsing it gives a Filter with
// the same String.
func (f *Filter) String() string { return f.canonicalText }

// parser is the state of one Parse call.
type parser struct {
	lex      lexer
	tok      token
	depth    int
	conds    int
	regexLen int // program instructions of the filter's regular expressions
}

func (p *parser) advance() { p.tok = p.lex.next() }

// errorf returns a *ParseError at byte offset pos.
func (p *parser) errorf(pos int, format string, args ...any) error {
	src := p.lex.src
	pos = min(max(pos, 0), len(src))
	before := src[:pos]
	line := 1 + strings.Count(before, "\n")
	col := utf8.RuneCountInString(before[strings.LastIndexByte(before, '\n')+1:]) + 1
	return &ParseError{Line: line, Column: col, Offset: pos, Msg: fmt.Sprintf(format, args...)}
}

// unexpected reports the current token where want was expected, with a
// message of its own for the tokens that name something Hearth does not
// support.
func (p *parser) unexpected(want string) error {
	t := p.tok
	switch t.kind {
	case tError:
		return p.errorf(t.pos, "%s", t.text)
	case tArith:
		return p.errorf(t.pos, "arithmetic (%s) is not supported in filters", t.text)
	case tStructural:
		return p.errorf(t.pos, "structural operator %s is not supported: a filter is one { ... } over single events", t.text)
	case tBadScope:
		return p.badScope(t)
	case tUnknownCh:
		if t.text == "'" {
			return p.errorf(t.pos, "strings are written in double quotes or backquotes, not single quotes")
		}
	}
	return p.errorf(t.pos, "expected %s, found %s", want, t.describe())
}

// parseQuery parses a whole input.
//
//	query = spansetFilter { "|" stage } .
//
// Only a single spanset filter is supported; the pipeline loop is where
// stages (select, by, count() > n, metrics functions) would go.
func (p *parser) parseQuery() (expr, error) {
	switch p.tok.kind {
	case tEOF:
		return nil, p.errorf(p.tok.pos, "empty filter: write { } to select every event")
	case tLParen:
		return nil, p.errorf(p.tok.pos, "parentheses around spansets are not supported: a filter is one { ... }")
	case tLBrace:
	default:
		return nil, p.unexpected(`"{"`)
	}
	root, err := p.parseSpansetFilter()
	if err != nil {
		return nil, err
	}
	t := p.tok
	switch t.kind {
	case tEOF:
		return root, nil
	case tPipe:
		return nil, p.parseStage()
	case tAnd, tOr:
		return nil, p.errorf(t.pos, "combining spansets with %s is not supported: put every condition inside one { ... }", t.text)
	case tGt, tLt, tNre, tStructural:
		return nil, p.errorf(t.pos, "structural operator %s is not supported: a filter is one { ... } over single events", t.text)
	case tWord:
		if t.text == "with" {
			return nil, p.errorf(t.pos, "query hints (with ...) are not supported")
		}
	}
	return nil, p.unexpected("end of filter")
}

// parseStage reports a pipeline stage, which Hearth does not support yet.
func (p *parser) parseStage() error {
	pipe := p.tok
	p.advance()
	what := "pipelines (| ...) are"
	if p.tok.kind == tWord {
		what = "the pipeline stage | " + p.tok.text + "(...) is"
	}
	return p.errorf(pipe.pos, "%s not supported: a filter is one { ... }, and Hearth's queries group and aggregate beside it", what)
}

// parseSpansetFilter parses "{" [ expr ] "}".
func (p *parser) parseSpansetFilter() (expr, error) {
	p.advance() // {
	if p.tok.kind == tRBrace {
		p.advance()
		return nil, nil
	}
	e, err := p.parseExpr()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tRBrace {
		return nil, p.unexpected(`&&, || or "}"`)
	}
	p.advance()
	return e, nil
}

// parseExpr parses conditions joined by && or by ||.
//
//	expr = unary { "&&" unary } | unary { "||" unary } .
//
// TraceQL gives && and || the same precedence and groups them from the
// left, so "a || b && c" means "(a || b) && c" there, unlike in most
// languages. Rather than pick one reading silently, a filter must
// parenthesize to mix them.
func (p *parser) parseExpr() (expr, error) {
	first, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tAnd && p.tok.kind != tOr {
		return first, nil
	}
	op := p.tok.kind
	args := []expr{}
	add := func(e expr) {
		// (a && b) && c is a && b && c.
		switch e := e.(type) {
		case *andExpr:
			if op == tAnd {
				args = append(args, e.args...)
				return
			}
		case *orExpr:
			if op == tOr {
				args = append(args, e.args...)
				return
			}
		}
		args = append(args, e)
	}
	add(first)
	for p.tok.kind == tAnd || p.tok.kind == tOr {
		if p.tok.kind != op {
			return nil, p.errorf(p.tok.pos, "&& and || have the same precedence in TraceQL: add parentheses to say which comes first, like (a && b) || c")
		}
		p.advance()
		e, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		add(e)
	}
	if op == tAnd {
		return &andExpr{args: args}, nil
	}
	return &orExpr{args: args}, nil
}

// parseUnary parses a negation, a parenthesized expression or a
// comparison.
//
//	unary = "!" "(" expr ")" | "(" expr ")" | comparison | "true" | "false" .
func (p *parser) parseUnary() (expr, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, p.errorf(p.tok.pos, "filter nests deeper than %d levels", maxDepth)
	}
	switch p.tok.kind {
	case tNot:
		p.advance()
		if p.tok.kind != tLParen {
			// TraceQL binds ! tighter than comparisons: !span.x = 1
			// means (!span.x) = 1 there, which is rarely meant.
			return nil, p.errorf(p.tok.pos, `! applies to a condition in parentheses, like !(span.x = "a")`)
		}
		x, err := p.parseParens()
		if err != nil {
			return nil, err
		}
		return &notExpr{x: x}, nil
	case tLParen:
		return p.parseParens()
	}
	return p.parseComparison()
}

func (p *parser) parseParens() (expr, error) {
	open := p.tok
	p.advance()
	e, err := p.parseExpr()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tRParen {
		if p.tok.kind == tEOF || p.tok.kind == tRBrace {
			return nil, p.errorf(p.tok.pos, `expected ")" to close the "(" at %s`, p.lineCol(open.pos))
		}
		return nil, p.unexpected(`&&, || or ")"`)
	}
	p.advance()
	return e, nil
}

func (p *parser) lineCol(pos int) string {
	e := p.errorf(pos, "").(*ParseError)
	return fmt.Sprintf("%d:%d", e.Line, e.Column)
}

// operand is one side of a comparison: a field or a literal.
type operand struct {
	tok   token
	field *field
	lit   *literal
}

var compareOps = map[tokKind]Op{
	tEq: OpEq, tNeq: OpNeq, tLt: OpLt, tLte: OpLte, tGt: OpGt, tGte: OpGte, tRe: OpRe, tNre: OpNre,
}

// parseComparison parses a field compared with a literal, either way
// round, or true or false alone.
//
//	comparison = operand op operand .
//	op         = "=" | "!=" | "<" | "<=" | ">" | ">=" | "=~" | "!~" .
func (p *parser) parseComparison() (expr, error) {
	left, err := p.parseOperand()
	if err != nil {
		return nil, err
	}
	op, ok := compareOps[p.tok.kind]
	if !ok {
		if left.lit != nil && left.lit.typ == lBool {
			return &constExpr{v: left.lit.i != 0}, nil
		}
		what := "a value"
		if left.field != nil {
			what = left.field.String()
		}
		return nil, p.unexpected("an operator (=, !=, <, <=, >, >=, =~, !~) after " + what)
	}
	opTok := p.tok
	p.advance()
	right, err := p.parseOperand()
	if err != nil {
		return nil, err
	}
	switch {
	case left.field != nil && right.field != nil:
		return nil, p.errorf(right.tok.pos, "comparing two fields is not supported: compare %s with a value", left.field)
	case left.lit != nil && right.lit != nil:
		return nil, p.errorf(left.tok.pos, "a comparison needs a field, like span.x = 1 or duration > 1s")
	case left.lit != nil:
		if op.regex() {
			return nil, p.errorf(left.tok.pos, "the regular expression goes on the right of %s", op)
		}
		left, right, op = right, left, op.flip()
	}
	p.conds++
	if p.conds > maxConditions {
		return nil, p.errorf(left.tok.pos, "filter has more than %d conditions", maxConditions)
	}
	c := &cmpExpr{field: *left.field, op: op, lit: *right.lit}
	if err := p.check(c, opTok, right.tok); err != nil {
		return nil, err
	}
	return c, nil
}

// parseOperand parses a field or a literal.
func (p *parser) parseOperand() (operand, error) {
	t := p.tok
	o := operand{tok: t}
	switch t.kind {
	case tAttr:
		f := field{name: t.str}
		switch t.scope {
		case "span":
			f.kind = fSpanAttr
		case "resource":
			f.kind = fResourceAttr
			if t.str == "service.name" {
				f.kind = fService
			}
		default:
			f.kind = fAnyAttr
		}
		o.field = &f
	case tScoped:
		f, err := p.scopedIntrinsic(t)
		if err != nil {
			return o, err
		}
		o.field = &f
	case tWord:
		if f, ok := intrinsics[t.text]; ok {
			o.field = &field{kind: f}
			break
		}
		if l, ok := wordLiterals[t.text]; ok {
			o.lit = &l
			break
		}
		if why, ok := unsupportedIntrinsics[t.text]; ok {
			return o, p.errorf(t.pos, "%s is not supported: %s", t.text, why)
		}
		return o, p.errorf(t.pos, "unknown field %s: attributes are written span.%s, resource.%s or .%s", t.text, t.text, t.text, t.text)
	case tString:
		o.lit = &literal{typ: lString, str: t.str}
	case tInt:
		o.lit = &literal{typ: lInt, i: t.i}
	case tFloat:
		o.lit = &literal{typ: lFloat, f: t.f}
	case tDuration:
		o.lit = &literal{typ: lDuration, i: t.i}
	default:
		return o, p.unexpected("a field or a value")
	}
	p.advance()
	return o, nil
}

// intrinsics are the unscoped intrinsic names.
var intrinsics = map[string]fieldKind{
	"name": fName, "duration": fDuration, "status": fStatus, "kind": fKind, "statusMessage": fStatusMessage,
}

// scopedIntrinsics are the span: and trace: intrinsics Hearth evaluates.
var scopedIntrinsics = map[string]fieldKind{
	"span:name": fName, "span:duration": fDuration, "span:status": fStatus, "span:kind": fKind,
	"span:statusMessage": fStatusMessage, "span:id": fSpanID, "span:parentID": fParentID, "trace:id": fTraceID,
}

const needsTrace = "it needs the whole trace, and a filter looks at one event at a time (not supported yet)"

// unsupportedIntrinsics are TraceQL intrinsics Hearth cannot evaluate on
// one event, with why.
var unsupportedIntrinsics = map[string]string{
	"traceDuration":           needsTrace,
	"rootName":                needsTrace,
	"rootServiceName":         needsTrace,
	"trace:duration":          needsTrace,
	"trace:rootName":          needsTrace,
	"trace:rootService":       needsTrace,
	"childCount":              needsTrace,
	"span:childCount":         needsTrace,
	"parent":                  needsTrace,
	"nestedSetLeft":           needsTrace,
	"nestedSetRight":          needsTrace,
	"nestedSetParent":         needsTrace,
	"event:name":              "span events are kept with their span but not filtered on",
	"event:timeSinceStart":    "span events are kept with their span but not filtered on",
	"link:traceID":            "links are kept with their span but not filtered on",
	"link:spanID":             "links are kept with their span but not filtered on",
	"instrumentation:name":    "Hearth does not keep the instrumentation scope",
	"instrumentation:version": "Hearth does not keep the instrumentation scope",
}

// wordLiterals are the literals written as words.
var wordLiterals = map[string]literal{
	"true":        {typ: lBool, i: 1},
	"false":       {typ: lBool, i: 0},
	"nil":         {typ: lNil},
	"ok":          {typ: lStatus, status: events.StatusOK},
	"error":       {typ: lStatus, status: events.StatusError},
	"unset":       {typ: lStatus, status: events.StatusUnset},
	"unspecified": {typ: lKind, kind: events.KindUnspecified},
	"internal":    {typ: lKind, kind: events.KindInternal},
	"server":      {typ: lKind, kind: events.KindServer},
	"client":      {typ: lKind, kind: events.KindClient},
	"producer":    {typ: lKind, kind: events.KindProducer},
	"consumer":    {typ: lKind, kind: events.KindConsumer},
	"minInt":      {typ: lInt, i: -1 << 63},
	"maxInt":      {typ: lInt, i: 1<<63 - 1},
}

func (p *parser) scopedIntrinsic(t token) (field, error) {
	if f, ok := scopedIntrinsics[t.text]; ok {
		return field{kind: f}, nil
	}
	if why, ok := unsupportedIntrinsics[t.text]; ok {
		return field{}, p.errorf(t.pos, "%s is not supported: %s", t.text, why)
	}
	switch t.scope {
	case "span", "trace":
		return field{}, p.errorf(t.pos, "unknown intrinsic %s", t.text)
	}
	return field{}, p.errorf(t.pos, "%s is not supported: Hearth filters on span: and trace:id intrinsics, span. and resource. attributes", t.text)
}

func (p *parser) badScope(t token) error {
	switch t.scope {
	case "event":
		return p.errorf(t.pos, "event. attributes are not supported: span events are kept with their span but not filtered on")
	case "link":
		return p.errorf(t.pos, "link. attributes are not supported: links are kept with their span but not filtered on")
	case "parent":
		return p.errorf(t.pos, "parent. attributes are not supported: a filter looks at one event at a time")
	}
	return p.errorf(t.pos, "%s. attributes are not supported: Hearth keeps span and resource attributes", t.scope)
}

// check type-checks a comparison and prepares its literal: what the parser
// can tell is wrong is an error here, not a filter that silently matches
// nothing.
func (p *parser) check(c *cmpExpr, opTok, litTok token) error {
	f, op, l := c.field, c.op, c.lit
	if l.typ == lNil {
		if op != OpEq && op != OpNeq {
			return p.errorf(opTok.pos, "nil compares only with = and !=")
		}
		if op == OpEq && !f.isAttr() && f.kind != fService {
			return p.errorf(litTok.pos, "%s always has a value: = nil would never match", f)
		}
		return nil
	}
	if op.regex() && (f.kind == fDuration || f.kind == fStatus || f.kind == fKind) {
		return p.errorf(opTok.pos, "%s does not compare with %s", f, op)
	}
	if op.regex() && l.typ != lString {
		return p.errorf(litTok.pos, "%s needs a regular expression in a string, not %s", op, l.describe())
	}
	switch f.kind {
	case fSpanAttr, fResourceAttr, fAnyAttr:
		switch l.typ {
		case lStatus, lKind:
			what := "status"
			if l.typ == lKind {
				what = "kind"
			}
			return p.errorf(litTok.pos, "%s is a %s value, for the %s intrinsic: to compare %s with the text, quote it: %q", l, what, what, f, l.String())
		case lBool:
			if op != OpEq && op != OpNeq {
				return p.errorf(opTok.pos, "booleans compare only with = and !=")
			}
		}
	case fName, fStatusMessage, fService:
		if l.typ != lString {
			return p.errorf(litTok.pos, "%s is a string: compare it with a quoted string, not %s", f, l.describe())
		}
	case fDuration:
		if !l.numeric() {
			return p.errorf(litTok.pos, "duration is compared with a duration like 500ms (or a number of nanoseconds), not %s", l.describe())
		}
	case fStatus, fKind:
		want, values := lStatus, "error, ok or unset"
		if f.kind == fKind {
			want, values = lKind, "server, client, producer, consumer, internal or unspecified"
		}
		if l.typ != want {
			hint := ""
			if l.typ == lString {
				hint = " (without quotes)"
			}
			return p.errorf(litTok.pos, "%s is compared with %s%s, not %s", f, values, hint, l.describe())
		}
		if op != OpEq && op != OpNeq {
			return p.errorf(opTok.pos, "%s compares only with = and !=", f)
		}
	case fSpanID, fParentID, fTraceID:
		if l.typ != lString {
			return p.errorf(litTok.pos, "%s is compared with a hex ID in a string, not %s", f, l.describe())
		}
		switch op {
		case OpEq, OpNeq:
			var err error
			what := "span ID of 1 to 16"
			if f.kind == fTraceID {
				what = "trace ID of 1 to 32"
				c.traceID, err = events.ParseTraceID(l.str)
			} else {
				c.spanID, err = events.ParseSpanID(l.str)
			}
			if err != nil {
				return p.errorf(litTok.pos, "%s is compared with a hex %s digits, not %s", f, what, l)
			}
		case OpRe, OpNre:
		default:
			return p.errorf(opTok.pos, "%s compares only with =, !=, =~ and !~", f)
		}
	}
	if op.regex() {
		m, size, msg := compileRegex(l.str)
		if msg != "" {
			return p.errorf(litTok.pos, "%s", msg)
		}
		p.regexLen += size
		if p.regexLen > maxFilterRegexInst {
			return p.errorf(litTok.pos, "the filter's regular expressions are too complex together (limit %d instructions)", maxFilterRegexInst)
		}
		c.re = m
	}
	return nil
}
