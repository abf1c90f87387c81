// Package ingest turns what clients push into what storage keeps: it reads
// the Pyroscope ingest API's parameters and formats (pprof in any encoding
// google/pprof reads, folded and lines text), names each sample type's
// profile type, validates labels and limits, and hands storage.Inputs to
// the store.
//
// Bad input is an *InputError whose message names the cause; nothing of a
// refused request is stored. The decoders are safe for concurrent use; an
// Ingester is too.
package ingest
