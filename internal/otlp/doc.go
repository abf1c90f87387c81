// Package otlp takes in OpenTelemetry profiles, traces and logs (OTLP)
// over HTTP and gRPC: profiles it stores through Hearth's ingester, spans
// and log records as events through an events.Appender.
//
// # Ways in of profiles
//
// HTTP: POST to each of Paths (/v1development/profiles, and /v1/profiles
// for when the signal is stable) an ExportProfilesServiceRequest as
// application/x-protobuf or application/json, optionally with
// Content-Encoding: gzip; NewHandler serves them. gRPC:
// opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export,
// registered by RegisterGRPC. Both read the tenant from X-Scope-OrgID
// (metadata key x-scope-orgid).
//
// Answers: 200 with an ExportProfilesServiceResponse in the request's
// encoding, whose partial_success counts the profiles refused and names
// the first few with their reason, while the others are stored in one
// atomic write. 400 for a body that does not decode, a bad tenant or an
// unsupported development version; 413 for a body over the limit, before
// or after gzip; 415 for other content types or encodings; 405 for other
// methods; 503 with Retry-After when storage failed and nothing was
// stored. Error bodies are google.rpc.Status messages in the request's
// encoding, as OTLP/HTTP asks. gRPC answers the same with InvalidArgument
// and Unavailable (with RetryInfo); a message that is not protobuf at all
// is refused by grpc-go before Hearth sees it, with Internal.
//
// # Protocol version
//
// Requests are decoded by go.opentelemetry.io/collector/pdata v1.71.0 and
// pdata/pprofile v0.165.0, which implement the v1development profiles of
// opentelemetry-proto 1.10.0: one dictionary per request with a stack
// table, one sample type per Profile, Sample fields numbered stack_index 1,
// attribute_indices 2, link_index 3, values 4, timestamps_unix_nano 5, and
// string-table references (key_strindex, string_value_strindex) in
// resource and scope attributes. pdata calls this layout profiles
// development version 1. A request that names another version in the
// OTLP-Profiles-Development-Version header (gRPC metadata
// otlp-profiles-development-version) is refused; one that names none is
// version 1. testdata holds a payload of this version, protobuf and JSON,
// captured from what pdata's clients send.
//
// Older layouts are not translated: pdata v1.71.0 reads only its own, and
// its hook for migrating older payloads is empty. What a sender on an older
// proto gets:
//
//   - 1.7.0 protobuf (Profile.location_indices, Sample.locations_start_index
//     and locations_length): fields change wire type under 1.10's numbers,
//     so the request does not decode: 400.
//   - 1.9.0 protobuf: Sample.values was field 2, which 1.10 reads as
//     attribute_indices. Such samples arrive without values, and their
//     profile is refused with a message that says why. A 1.9.0 sample with
//     a link has its link index (field 4, 1.10's values) read as its value
//     and its values as attribute indices: it is refused when those fall
//     outside the attribute table, and stored wrong when they do not.
//   - 1.8.0 protobuf: not checked.
//   - JSON names fields instead of numbering them, so the 1.10 renumbering
//     does not affect it. Before 1.9.0, Profile.samples was "sample" and
//     Location.lines "line"; pdata ignores those names, so the profiles of
//     such a request arrive without samples and nothing is stored.
//
// # From OTLP to Hearth
//
// Each OTLP Profile becomes a pprof profile: its sample type, period type
// and period from the string table; its mappings (with the build ID from
// the process.executable.build_id.* attributes), locations with all their
// lines (inlined callees first, as in pprof), functions with name, system
// name, file and start line; its time and duration. A sample's value is
// the sum of its values, or with timestamps only, one per timestamp; the
// timestamps themselves are not kept, as Hearth keeps one time per
// profile. Profiles of one scope with the same time, period and profile
// attributes but different sample types, which is how a pprof profile of
// several sample types travels in OTLP, merge back into one pprof profile
// and are stored as one.
//
// Series labels come from the resource and scope attributes: service.name
// becomes service_name (unknown_service when missing, as OpenTelemetry
// names a service it does not know), and every other attribute name has
// each character outside [a-zA-Z0-9_] replaced by "_" (a leading digit
// gets a "_" before it); values other than strings are formatted.
// otel_scope_name holds the scope's name, so that two profilers of one
// service keep separate series. Sample attributes, and the profile's own
// attributes, become per-sample pprof labels under the same names: string
// labels, except integers with a unit, which stay pprof numeric labels. A
// sample's link becomes the per-sample labels trace_id and span_id, as
// lower-case hex, the names the Pyroscope SDKs use. Per-sample labels can
// be matched in queries but make no series.
//
// Not kept: original_payload, profile_id, dropped_attributes_count,
// location and other mapping attributes, and attribute values given as
// string-table references in the attribute table (pdata's API resolves
// those only in resource and scope attributes, and reads them as empty).
//
// A profile with an index out of its table, a string index out of the
// string table, or more samples or frames than Limits allow is refused
// alone with a message naming it; the others of the request are stored.
//
// # Ways in of traces and logs
//
// HTTP: POST to TracesPath (/v1/traces) an ExportTraceServiceRequest, and
// to LogsPath (/v1/logs) an ExportLogsServiceRequest, as
// application/x-protobuf or application/json, optionally with
// Content-Encoding: gzip; NewTracesHandler and NewLogsHandler serve them,
// RegisterEvents both. gRPC:
// opentelemetry.proto.collector.trace.v1.TraceService/Export and
// opentelemetry.proto.collector.logs.v1.LogsService/Export, registered by
// RegisterEventsGRPC on the server that serves profiles. The tenant is
// read as for profiles, and requests take their share of the in-flight
// budget and of the tenant's ingest rate through an ingest.Admitter
// (counting the body as sent over HTTP, the decoded message over gRPC).
//
// Answers are those of profiles: 200 with an ExportTraceServiceResponse or
// ExportLogsServiceResponse in the request's encoding, whose
// partial_success counts the spans (rejected_spans) or log records
// (rejected_log_records) refused and names the first five with their
// reason, while the others are stored in one write. What the limits cut is
// told in error_message with nothing rejected, which OTLP defines as a
// warning. 400 for a body that does not decode (pdata refuses the whole
// request when an ID has the wrong length) or a bad tenant; 413 for a body
// over the limits or more spans or records than
// events.Limits.MaxPerRequest (gRPC ResourceExhausted without RetryInfo,
// which exporters do not retry); 415 for other content types or
// encodings; 429 with Retry-After over the tenant's ingest rate or when
// the server is busy; 503 with Retry-After (gRPC Unavailable with
// RetryInfo) when the Appender's error wraps storage.ErrUnavailable; 500
// for any other storage error.
//
// # From spans and log records to events
//
// A span is an event: Start is start_time_unix_nano, Duration end minus
// start; TraceID, SpanID and ParentID its IDs; Name, Kind, Status and
// StatusMessage its own (kinds and codes this OTLP does not know are
// unspecified and unset). Service is the resource's service.name, or
// unknown_service, as OpenTelemetry SDKs name a service they were not
// told. The other resource attributes are resource.<key>; the
// instrumentation scope's name and version are span.otel.scope.name and
// span.otel.scope.version (OpenTelemetry's names for them in formats
// without scopes), its attributes and the span's span.<key>. Values keep
// their type when it is a string, int, double or bool; bytes become
// lowercase hex, arrays and maps their JSON text; empty values are left
// out. Span events (time, name, attributes) and links (IDs, attributes)
// are kept, with unscoped keys. Not kept: trace_state, flags, the dropped
// counts and schema URLs. A span whose trace or span ID is all zeros,
// that has no start time, that ends before it starts or whose times are
// past 2262 is refused.
//
// A log record is an event of Duration 0 at time_unix_nano, or
// observed_time_unix_nano when that is 0, or the time the request arrived
// when both are. Its Name is its event_name, or "log" for a plain log
// line. Its trace_id is the event's TraceID and its span_id the event's
// ParentID: a log record is written inside a span and is not one, so it
// sits under that span in its trace, and a span ID still names one span
// only. The body is span.body (as text; structured bodies as JSON), the
// severity span.severity and span.severity_number, the record's attributes
// span.<key> (a record attribute of one of those names replaces it); the
// resource and scope as for spans.
//
// Each event is held to events.Limits: past MaxAttributes, the attributes
// given last are dropped (resource first, then scope, then the event's
// own, so that runaway span attributes do not push out where the span
// came from), and strings past MaxValueBytes are cut.
package otlp
