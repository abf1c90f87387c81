package storage

import "strings"

// ImmutableObject says whether the object of a bucket name is one that a
// bucket cache (bucket.Cached) may keep: a data file of a block, in
// "<tenant>/blocks/<id>/". Those are written once before the block's
// meta.json and never replaced, since a block's ID is never reused; and
// they are read only after the store found the block's meta.json in the
// bucket. meta.json is not one of them: whether it is there is what says
// that a block exists, so it must come from the bucket, or a querier could
// open a block that a compactor deleted. Neither is any object added to a
// block directory after the block (a deletion mark), nor anything outside
// one.
func ImmutableObject(name string) bool {
	parts := strings.Split(name, "/")
	if len(parts) != 4 || parts[1] != "blocks" {
		return false
	}
	if _, err := parseID(parts[2]); err != nil {
		return false
	}
	switch parts[3] {
	case indexFile, symbolsFile, samplesFile, spansFile, eventsFile:
		return true
	}
	return false
}
