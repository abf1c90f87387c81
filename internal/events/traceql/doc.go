// Package traceql reads TraceQL span filters, the `{ ... }` part of
// Grafana Tempo's query language, and evaluates them on batches of events,
// a column at a time.
//
//	{ resource.service.name = "checkout" && span.http.route = "/cart" && duration > 500ms && status = error }
//
// # Syntax
//
// A filter is `{ }`, which every event matches, or `{ conditions }`.
// Conditions are comparisons joined by && or ||, grouped with parentheses
// and negated with !( ... ). TraceQL gives && and || the same precedence,
// grouping from the left, which surprises most readers of "a || b && c";
// Hearth refuses to guess and asks for parentheses when they are mixed. !
// must be followed by a parenthesized condition (in TraceQL, !span.x = 1
// would negate span.x, not the comparison). true and false are conditions
// too. Whitespace, // line comments and /* block comments */ may come
// between tokens.
//
// A comparison is a field, an operator and a literal, either way round
// (500 < span.x is span.x > 500; a regular expression must be on the
// right). Comparing two fields, and arithmetic, are not supported.
//
// Fields:
//
//   - span.NAME, resource.NAME: the event's span or resource attribute NAME
//     (the key "span.NAME" or "resource.NAME" of the batch's attributes).
//     A name runs until whitespace or one of { } ( ) = ~ ! < > & | ^ , so
//     span.http.response.status_code and span.a-b/c are names; parts in
//     double quotes may hold anything, with \" and \\ as the only escapes:
//     span."my attr", span.http."x y".
//   - .NAME (unscoped): the span attribute NAME if the event has one, of
//     any type, else the resource attribute NAME. This is how Tempo reads
//     an unscoped attribute: a span attribute shadows the resource's.
//   - resource.service.name: the event's service (the Service column, not
//     an attribute). An event with an empty service has none.
//   - name, duration, status, kind, statusMessage, and their scoped forms
//     span:name, span:duration, span:status, span:kind, span:statusMessage.
//   - span:id, span:parentID, trace:id: the IDs, compared with hex strings.
//
// traceDuration, rootName, rootServiceName, trace:duration, trace:rootName,
// trace:rootService, childCount, span:childCount, parent and the nested set
// intrinsics need the whole trace and are refused, as are event. link.
// parent. instrumentation. attributes and event:, link: and
// instrumentation: intrinsics.
//
// Operators: = != < <= > >= =~ !~. Literals:
//
//   - strings "..." with Go's escapes, and `...` taken as written;
//   - integers (64-bit, with minInt and maxInt), floats (1.5, 2e3);
//   - durations: a number and a unit, possibly several (500ms, 1.5s, 1h30m,
//     100us or 100µs, 10ns, 2m, 1h, 1d, 1w, 1y);
//   - true and false; nil;
//   - statuses error, ok, unset; kinds server, client, producer,
//     consumer, internal, unspecified.
//
// Anything after the closing brace is refused with a message that names
// it: pipelines (| count() > 1, | select(...), | by(...), | rate()),
// spanset operators ({ } && { }, { } >> { }, ~, &>> and the rest) and query
// hints (with(...)).
//
// # Types
//
// What the parser can see is checked when parsing, as a *ParseError with
// its position:
//
//   - name, statusMessage and resource.service.name compare with strings,
//     with any operator (< and > order strings byte by byte);
//   - duration compares with numbers and durations, not with =~ or !~; a
//     bare number counts nanoseconds, as in Tempo;
//   - status compares with error, ok or unset, kind with a kind, both only
//     with = and !=;
//   - span:id, span:parentID and trace:id compare with a hex string: = and
//     != as IDs (zeros are added on the left of a short one, as Tempo
//     does), =~ and !~ with the lowercase hex of full width;
//   - an attribute compares with a string, a number, a duration or a
//     boolean, not with a status or a kind;
//   - =~ and !~ need a string; booleans and nil only = and !=; an
//     intrinsic = nil is refused (an intrinsic always has a value; its
//     != nil always holds).
//
// An attribute's type is known only per event (a key can hold a string in
// one event and an int in the next), so these rules apply when matching:
//
//   - A string literal compares with string values; a number or a
//     duration (as nanoseconds) with int and float values, numerically
//     (an int compared with 1.5 exactly, without rounding to float); a
//     boolean with bool values. A value of another type never matches,
//     whatever the operator: span.code != 200 does not match a string
//     "500".
//   - An event without the attribute matches no comparison, != and !~
//     included: span.x != "a" means "span.x exists and is not a", as in
//     Tempo. !(span.x = "a") matches events without span.x.
//   - span.x != nil matches the events that have span.x, span.x = nil the
//     others.
//
// Regular expressions are Go's (RE2), anchored at both ends and with .
// matching newlines, as in Tempo and Prometheus: span.x =~ "b" does not
// match "abc". A pattern may be 16 KiB long and compile to about 20,000
// instructions (100,000 over a filter); anything bigger is a ParseError.
//
// # Evaluation
//
// Parse compiles a filter into a tree of evaluators, each of which works a
// whole column: string comparisons loop over the batch's strings against a
// precomputed literal, regular expressions that are a literal, a list of
// literals (GET|POST) or a literal with .* before or after it need no
// automaton, and the others remember their answer per distinct value
// within a batch. && runs its cheap operands first and each operand only
// on the rows still selected; || runs each operand only on the rows not
// yet matched.
//
// Columns, Services and DurationRange tell storage what to read and what
// it may skip; Conditions lists the fields the filter compares.
package traceql
