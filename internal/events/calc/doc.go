// Package calc computes over the events a filter selects: groups by any
// fields, calculations per group and per time step, ordered, limited and
// filtered by having (Run), and the comparison of a selection with a
// baseline field by field, as Honeycomb's BubbleUp does (Compare).
//
// The query comes as strings, as the CLI and the HTTP API take it (Spec):
// fields ("span.http.route,resource.service.version"), calculations
// ("count,p99(duration),avg(duration)"), an order ("p99(duration) desc")
// and having conditions ("count > 10 && p99(duration) > 500ms"). Parse
// errors are QueryErrors that name the column.
//
// Neither Run nor Compare knows storage or the filter language: they take
// a Scan, which hands over Batches with the columns asked for, and a
// Filter, which marks the rows it selects. Both keep memory bounded
// whatever the data: Run keeps at most MaxGroups groups (and MaxCells
// groups times steps) and says when it left events out; Compare tracks at
// most MaxValues values per field and samples past SampleSize events.
//
// Accuracy: count, sum, avg, min and max are exact (sums of integers
// while they fit in 53 bits); percentiles are within SketchRelativeError
// (1/128) of the value of their rank, and exact for a group or step of
// up to 64 events; count_distinct is exact up to DistinctExact values and
// a HyperLogLog estimate (standard error DistinctRelativeError) past it.
package calc
