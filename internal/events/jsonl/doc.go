// Package jsonl takes in events as JSON, for code without an
// OpenTelemetry SDK: a script, a cron job, a shell loop with curl.
//
// # Way in
//
// POST /api/v1/events (Path) with a body of JSON lines, one object a line
// (blank lines are skipped), or one JSON array of objects, as Honeycomb's
// batch API takes them; optionally with Content-Encoding: gzip. Any JSON
// content type is taken (application/x-ndjson, application/json...), as
// are text/plain and the form type curl sends by default. The tenant is
// X-Scope-OrgID.
//
// # Answers
//
// 200 with a JSON Answer: {"accepted": 2, "refused_count": 1, "refused":
// [{"line": 3, "error": "..."}]}. Each line is refused alone (not a JSON
// object, a bad time, ID or duration) and the others are stored in one
// write; a refusal names its line (1-based) for JSON lines, or its index
// (0-based) for an array. Only the first 100 refusals are listed.
// attributes_dropped, values_cut and warnings say what the limits cut.
// When every line is refused: 400 with the same Answer and an error.
//
// A request refused whole gets {"status": "error", "errorType": ...,
// "error": ...}, as Hearth's API answers: 400 for a bad tenant, an array
// that is not valid JSON, or a body without events; 413 for a body over
// the body or decompression limit, or more events than
// --events.max-per-request; 415 for another content type or encoding;
// 429 with Retry-After over the tenant's ingest rate or when the server is
// busy; 503 with Retry-After when storage could not log the events, of
// which none were stored.
//
// # From JSON to events
//
// Nested objects are flattened, their keys joined with dots:
// {"user": {"id": "u-7"}} is the field user.id (16 levels deep at most;
// deeper objects are kept as their JSON text). Then:
//
//   - time: an RFC 3339 string, with any fraction of a second
//     ("2026-11-01T12:00:00.123Z"), or a Unix time number whose
//     magnitude gives its unit: below 1e11 seconds (a fraction allowed),
//     below 1e14 milliseconds, below 1e17 microseconds, else nanoseconds.
//     Without it, the time the request arrived.
//   - name: the event's name.
//   - duration_ms: a number of milliseconds (a fraction allowed); else
//     duration: a string as Go and TraceQL write durations ("412ms",
//     "1.5s"), or a number of milliseconds. Negative durations are
//     refused. Without either, 0.
//   - service.name, service_name, service or resource.service.name (the
//     first one present): the service; without any, unknown_service, as
//     OpenTelemetry names a service it was not told.
//   - trace.trace_id or trace_id, trace.span_id or span_id,
//     trace.parent_id or parent_id: hex IDs, as Honeycomb's Beelines and
//     OpenTelemetry write them; shorter ones are padded with zeros on the
//     left (64-bit trace IDs of older tracers).
//   - status: when it names a status (unset, ok, error, in any case);
//     kind: when it names a span kind (server, client, internal,
//     producer, consumer). Otherwise, such as "status": 200, they are
//     attributes like any other field.
//   - error: a non-empty string sets the status to error and is its
//     message; true sets the status to error; false, "" and null say
//     nothing.
//
// Every other field is an attribute: span.<field>, or the field as it is
// when it starts with resource. or span. already. Strings stay strings,
// integers that fit 64 bits are ints, other numbers floats, booleans
// booleans; arrays (and too deep objects) are their JSON text, and null
// fields are left out. A field given twice keeps its last value.
//
// # Limits
//
// One line (or object of an array) is at most 1 MiB
// (Options.MaxLineBytes); the body is held to the server's body and
// decompression limits, its events to --events.max-per-request, and each
// event to --events.max-attributes and --events.max-value-bytes, which
// cut rather than refuse (see events.Limits).
package jsonl
