// Package otelcol checks that an OpenTelemetry Collector pipeline works
// against Hearth unchanged: a Collector built from the Collector's own Go
// modules (OTLP receiver, batch processor, OTLP gRPC and OTLP/HTTP
// exporters), configured from YAML as a user configures theirs, exports
// traces and logs to a real Hearth server, and the test reads them back
// through Hearth's events API.
//
// It is a module of its own so that the Collector, and the many modules it
// brings, are dependencies of this check only, never of Hearth. Run it with
//
//	cd interop/otelcol && go test ./...
package otelcol
