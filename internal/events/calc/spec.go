package calc

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// QueryError is a query that cannot be answered as asked: a spec that
// does not parse, or one past a limit. Its message names the cause, and
// for a syntax error the 1-based column (as "1:7: ...").
type QueryError struct {
	// Col is the column a syntax error is at; 0 for other errors.
	Col int
	Msg string
}

func (e *QueryError) Error() string {
	if e.Col > 0 {
		return "1:" + strconv.Itoa(e.Col) + ": " + e.Msg
	}
	return e.Msg
}

func syntaxError(col int, format string, args ...any) error {
	return &QueryError{Col: col, Msg: fmt.Sprintf(format, args...)}
}

func queryErrorf(format string, args ...any) error {
	return &QueryError{Msg: fmt.Sprintf(format, args...)}
}

// op is what a calculation computes.
type op uint8

const (
	opCount op = iota
	opSum
	opAvg
	opMin
	opMax
	opQuantile
	opCountDistinct
	opHeatmap
)

var opNames = map[string]op{
	"count":          opCount,
	"sum":            opSum,
	"avg":            opAvg,
	"min":            opMin,
	"max":            opMax,
	"count_distinct": opCountDistinct,
	"heatmap":        opHeatmap,
}

// Calc is one calculation over the events of a group: count, sum(F),
// avg(F), min(F), max(F), a percentile pN(F), count_distinct(F) or
// heatmap(F). F is duration or an attribute for all but count_distinct,
// which takes any field; rows where F is absent or not a number (for the
// numeric ones) are left out of that calculation, not out of the group.
type Calc struct {
	op    op
	q     float64 // the quantile, in (0, 1), of a percentile
	field Field
	name  string
}

// String is the calculation as results name it, e.g. "p99(duration)".
func (c Calc) String() string { return c.name }

// Unit is the unit of the calculation's values: "ns" for those over the
// duration (counts excepted), "" where unknown or a plain number.
func (c Calc) Unit() string {
	if c.op != opCount && c.op != opCountDistinct && (c.field.IsDuration() || c.field.IsCPU()) {
		return "ns"
	}
	return ""
}

// IsHeatmap says whether the calculation is a heatmap, whose value is a
// histogram rather than a number.
func (c Calc) IsHeatmap() bool { return c.op == opHeatmap }

// Field is what the calculation reads; the zero Field for count.
func (c Calc) Field() Field { return c.field }

// CountCalc is count, the default calculation.
var CountCalc = Calc{op: opCount, name: "count"}

// ParseCalc reads one calculation.
func ParseCalc(s string) (Calc, error) {
	sc := &scanner{src: s}
	sc.space()
	c, err := sc.calc()
	if err != nil {
		return Calc{}, err
	}
	sc.space()
	if !sc.done() {
		return Calc{}, sc.errorf(sc.pos, "unexpected %s after %s", sc.what(), c)
	}
	return c, nil
}

// ParseCalcs reads a comma-separated list of calculations, as --calc
// takes them: "count,p99(duration),avg(duration)". An empty list means
// count; a calculation named twice counts once.
func ParseCalcs(s string) ([]Calc, error) {
	sc := &scanner{src: s}
	var out []Calc
	seen := map[string]bool{}
	sc.space()
	if sc.done() {
		return nil, nil
	}
	for {
		c, err := sc.calc()
		if err != nil {
			return nil, err
		}
		if !seen[c.name] {
			seen[c.name] = true
			out = append(out, c)
		}
		sc.space()
		if sc.done() {
			return out, nil
		}
		if sc.peek() != ',' {
			return nil, sc.errorf(sc.pos, "expected , between calculations, found %s", sc.what())
		}
		sc.pos++
		sc.space()
	}
}

const calcHelp = "count, sum(F), avg(F), min(F), max(F), p50(F), p75(F), p90(F), p95(F), p99(F), p999(F), count_distinct(F), heatmap(F)"

func (sc *scanner) calc() (Calc, error) {
	start := sc.pos
	for !sc.done() && (isLetter(sc.peek()) || isDigit(sc.peek()) || sc.peek() == '_') {
		sc.pos++
	}
	word := strings.ToLower(sc.src[start:sc.pos])
	if word == "" {
		return Calc{}, sc.errorf(start, "expected a calculation (%s), found %s", calcHelp, sc.what())
	}
	o, ok := opNames[word]
	var q float64
	if !ok {
		q, ok = parsePercentile(word)
		if !ok {
			return Calc{}, sc.errorf(start, "unknown calculation %q: want one of %s", word, calcHelp)
		}
		o = opQuantile
	}
	sc.space()
	if o == opCount {
		if sc.peek() == '(' {
			sc.pos++
			sc.space()
			if sc.peek() != ')' {
				return Calc{}, sc.errorf(sc.pos, "count takes no field (count_distinct(F) counts distinct values), found %s", sc.what())
			}
			sc.pos++
		}
		return CountCalc, nil
	}
	if sc.peek() != '(' {
		return Calc{}, sc.errorf(sc.pos, "%s needs a field in parentheses, as %s(duration); found %s", word, word, sc.what())
	}
	sc.pos++
	sc.space()
	fpos := sc.pos
	f, err := sc.field()
	if err != nil {
		return Calc{}, err
	}
	sc.space()
	if sc.peek() != ')' {
		return Calc{}, sc.errorf(sc.pos, "expected ) after %s(%s, found %s", word, f, sc.what())
	}
	sc.pos++
	if o != opCountDistinct && !f.numeric() {
		return Calc{}, sc.errorf(fpos, "%s(%s): %s is not a number; %s takes duration or an attribute", word, f, f, word)
	}
	c := Calc{op: o, q: q, field: f}
	if o == opQuantile {
		word = percentileName(q)
	}
	c.name = word + "(" + f.String() + ")"
	return c, nil
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// parsePercentile reads p1 to p99 as that percentile, and p999, p9999
// (and so on) as 99.9, 99.99: the names in use for tail latencies.
func parsePercentile(w string) (float64, bool) {
	d, ok := strings.CutPrefix(w, "p")
	if !ok || d == "" || len(d) > 6 {
		return 0, false
	}
	for i := 0; i < len(d); i++ {
		if !isDigit(d[i]) {
			return 0, false
		}
	}
	if len(d) <= 2 {
		n, _ := strconv.Atoi(d)
		if n < 1 || d[0] == '0' {
			return 0, false
		}
		return float64(n) / 100, true
	}
	if !strings.HasPrefix(d, "99") || strings.Trim(d, "9") != "" {
		return 0, false
	}
	// p999 is 0.999: as many nines after the point as the name has.
	return 1 - math.Pow(10, -float64(len(d))), true
}

func percentileName(q float64) string {
	for n := 1; n <= 99; n++ {
		if float64(n)/100 == q {
			return "p" + strconv.Itoa(n)
		}
	}
	for k := 3; k <= 6; k++ {
		if 1-math.Pow(10, -float64(k)) == q {
			return "p" + strings.Repeat("9", k)
		}
	}
	return "p" + strconv.FormatFloat(q*100, 'g', -1, 64)
}

// Order says how groups are ranked: by a calculation's value over the
// whole range, descending unless Asc. Groups whose value is undefined (an
// avg over no values) come last either way.
type Order struct {
	Calc Calc
	Asc  bool
}

func (o Order) String() string {
	if o.Asc {
		return o.Calc.String() + " asc"
	}
	return o.Calc.String() + " desc"
}

// ParseOrder reads "CALC [asc|desc]", e.g. "p99(duration) desc". The
// empty string is the zero Order, which a Query reads as its first
// calculation descending.
func ParseOrder(s string) (Order, error) {
	sc := &scanner{src: s}
	sc.space()
	if sc.done() {
		return Order{}, nil
	}
	c, err := sc.calc()
	if err != nil {
		return Order{}, err
	}
	o := Order{Calc: c}
	sc.space()
	start := sc.pos
	for !sc.done() && isLetter(sc.peek()) {
		sc.pos++
	}
	switch strings.ToLower(sc.src[start:sc.pos]) {
	case "", "desc":
	case "asc":
		o.Asc = true
	default:
		return Order{}, sc.errorf(start, "expected asc or desc after %s, found %q", c, sc.src[start:sc.pos])
	}
	sc.space()
	if !sc.done() {
		return Order{}, sc.errorf(sc.pos, "unexpected %s after the order", sc.what())
	}
	if c.IsHeatmap() {
		return Order{}, sc.errorf(0, "cannot order by %s: a heatmap is not a number", c)
	}
	return o, nil
}

// Condition keeps a group when its calculation, over the whole range,
// compares as asked with Value: "count > 10", "p99(duration) > 500ms".
// A group whose value is undefined never passes.
type Condition struct {
	Calc Calc
	// Op is one of > >= < <= = !=.
	Op string
	// Value is what the calculation is compared with; nanoseconds for a
	// calculation over the duration.
	Value float64
}

func (c Condition) String() string {
	v := strconv.FormatFloat(c.Value, 'g', -1, 64)
	if c.Calc.Unit() == "ns" && c.Value != 0 {
		v = time.Duration(c.Value).String()
	}
	return c.Calc.String() + " " + c.Op + " " + v
}

func (c Condition) holds(v float64) bool {
	switch c.Op {
	case ">":
		return v > c.Value
	case ">=":
		return v >= c.Value
	case "<":
		return v < c.Value
	case "<=":
		return v <= c.Value
	case "=":
		return v == c.Value
	case "!=":
		return v != c.Value && !math.IsNaN(v)
	}
	return false
}

// ParseHaving reads conditions joined by "&&" (or commas, or "and"),
// all of which a group must pass: "count > 10 && p99(duration) > 500ms".
// A bound on a calculation over the duration needs a unit (500ms, 1.5s,
// 250us); one on any other is a plain number.
func ParseHaving(s string) ([]Condition, error) {
	sc := &scanner{src: s}
	sc.space()
	if sc.done() {
		return nil, nil
	}
	var out []Condition
	for {
		cstart := sc.pos
		c, err := sc.calc()
		if err != nil {
			return nil, err
		}
		if c.IsHeatmap() {
			return nil, sc.errorf(cstart, "having: %s is not a number", c)
		}
		sc.space()
		opStart := sc.pos
		var opStr string
		for _, o := range []string{">=", "<=", "!=", "==", ">", "<", "="} {
			if strings.HasPrefix(sc.src[sc.pos:], o) {
				opStr = o
				break
			}
		}
		if opStr == "" {
			return nil, sc.errorf(opStart, "expected a comparison (>, >=, <, <=, =, !=) after %s, found %s", c, sc.what())
		}
		sc.pos += len(opStr)
		if opStr == "==" {
			opStr = "="
		}
		sc.space()
		vstart := sc.pos
		for !sc.done() && sc.peek() > ' ' && sc.peek() != ',' && sc.peek() != '&' {
			sc.pos++
		}
		text := sc.src[vstart:sc.pos]
		v, err := boundValue(c, text)
		if err != nil {
			return nil, sc.errorf(vstart, "%v", err)
		}
		out = append(out, Condition{Calc: c, Op: opStr, Value: v})
		sc.space()
		if sc.done() {
			return out, nil
		}
		switch {
		case sc.peek() == ',':
			sc.pos++
		case strings.HasPrefix(sc.src[sc.pos:], "&&"):
			sc.pos += 2
		case len(sc.src)-sc.pos >= 4 && strings.EqualFold(sc.src[sc.pos:sc.pos+3], "and") && !nameByte(sc.src[sc.pos+3]):
			sc.pos += 3
		default:
			return nil, sc.errorf(sc.pos, "expected && between conditions, found %s", sc.what())
		}
		sc.space()
	}
}

// boundValue reads the right side of a condition on c.
func boundValue(c Calc, text string) (float64, error) {
	if text == "" {
		return 0, fmt.Errorf("expected a number after the comparison on %s", c)
	}
	f, ferr := strconv.ParseFloat(text, 64)
	if ferr == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
		return 0, fmt.Errorf("%q: want a finite number", text)
	}
	if c.Unit() == "ns" {
		if ferr == nil && f == 0 {
			return 0, nil
		}
		d, err := time.ParseDuration(text)
		if err != nil {
			if ferr == nil {
				return 0, fmt.Errorf("%s is a duration: give %q a unit, as %sms", c, text, text)
			}
			return 0, fmt.Errorf("%q is not a duration (500ms, 1.5s, 250us)", text)
		}
		return float64(d), nil
	}
	if ferr != nil {
		if _, err := time.ParseDuration(text); err == nil {
			return 0, fmt.Errorf("%s is not a duration: compare it with a plain number, not %q", c, text)
		}
		return 0, fmt.Errorf("%q is not a number", text)
	}
	return f, nil
}

// The defaults and bounds of a Query.
const (
	// DefaultLimit is how many groups a result lists when the query does
	// not say.
	DefaultLimit = 100
	// DefaultMaxGroups is how many distinct groups a query keeps apart
	// when it does not say; the events of groups beyond it are counted
	// but not shown (Result.Truncated).
	DefaultMaxGroups = 10000
	// MaxSteps bounds the time buckets of a query; a smaller step over
	// the same range is refused.
	MaxSteps = 11000
	// MaxCells bounds groups × steps, the number of series points a
	// query keeps: with many steps, fewer groups fit.
	MaxCells = 2_000_000
	// MaxExamples bounds the example events kept per group.
	MaxExamples = 10
	// MaxBy bounds the fields a query groups by.
	MaxBy = 10
)

// Query is what to compute over the events a filter selects.
type Query struct {
	// By are the fields whose distinct value combinations make the
	// groups; none puts every event in one group.
	By []Field
	// Calcs are computed per group; none means count.
	Calcs []Calc
	// Step cuts the time range into buckets of this length, aligned on
	// multiples of it since the Unix epoch; 0 computes over the whole
	// range only.
	Step time.Duration
	// Order ranks the groups; the zero Order is the first calculation
	// that is not a heatmap, descending (count when all are).
	Order Order
	// Limit is how many groups the result lists, after Having; 0 means
	// DefaultLimit.
	Limit int
	// Having keeps only the groups that pass every condition.
	Having []Condition
	// Examples is how many example events (trace and span IDs) to keep
	// per group, the slowest first; 0 keeps none.
	Examples int
	// MaxGroups bounds the distinct groups kept apart; 0 means
	// DefaultMaxGroups.
	MaxGroups int
}

// Spec is a Query as the CLI and the HTTP API take it: strings to parse.
type Spec struct {
	By, Calc, Order, Having string
	Step                    time.Duration
	Limit, Examples         int
}

// Query parses the spec; errors name the part (by, calc, order, having)
// and the column in it.
func (s Spec) Query() (Query, error) {
	var q Query
	var err error
	wrap := func(part string, err error) error {
		if qe, ok := err.(*QueryError); ok {
			return &QueryError{Msg: part + ": " + qe.Error()}
		}
		return fmt.Errorf("%s: %w", part, err)
	}
	if q.By, err = ParseFields(s.By); err != nil {
		return Query{}, wrap("by", err)
	}
	if q.Calcs, err = ParseCalcs(s.Calc); err != nil {
		return Query{}, wrap("calc", err)
	}
	if q.Order, err = ParseOrder(s.Order); err != nil {
		return Query{}, wrap("order", err)
	}
	if q.Having, err = ParseHaving(s.Having); err != nil {
		return Query{}, wrap("having", err)
	}
	q.Step, q.Limit, q.Examples = s.Step, s.Limit, s.Examples
	if err := q.check(); err != nil {
		return Query{}, err
	}
	return q, nil
}

// check refuses what no run could answer, before any data is read.
func (q *Query) check() error {
	switch {
	case q.Step < 0:
		return queryErrorf("step %s: must not be negative (0 is one bucket over the whole range)", q.Step)
	case q.Limit < 0:
		return queryErrorf("limit %d: must not be negative (0 means %d)", q.Limit, DefaultLimit)
	case q.Examples < 0 || q.Examples > MaxExamples:
		return queryErrorf("examples %d: want 0 to %d", q.Examples, MaxExamples)
	case q.MaxGroups < 0:
		return queryErrorf("max groups %d: must not be negative", q.MaxGroups)
	case len(q.By) > MaxBy:
		return queryErrorf("group by %d fields: at most %d", len(q.By), MaxBy)
	}
	if q.Order.Calc.name != "" && q.Order.Calc.IsHeatmap() {
		return queryErrorf("cannot order by %s: a heatmap is not a number", q.Order.Calc)
	}
	for _, h := range q.Having {
		if h.Calc.IsHeatmap() {
			return queryErrorf("having: %s is not a number", h.Calc)
		}
	}
	return nil
}

// order returns the order the query ranks by, filling the default.
func (q *Query) order() Order {
	if q.Order.Calc.name != "" {
		return q.Order
	}
	for _, c := range q.calcs() {
		if !c.IsHeatmap() {
			return Order{Calc: c}
		}
	}
	return Order{Calc: CountCalc}
}

func (q *Query) calcs() []Calc {
	if len(q.Calcs) == 0 {
		return []Calc{CountCalc}
	}
	return q.Calcs
}
