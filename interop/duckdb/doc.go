// Package duckdb checks that the Parquet files Hearth writes open in
// DuckDB, as docs/storage-format.md promises: a user can query their own
// events with SQL, without Hearth.
//
// It is a module of its own so that DuckDB, a C++ library linked through
// cgo, is a dependency of this check only, never of Hearth. Run it with
//
//	cd interop/duckdb && go test ./...
package duckdb
