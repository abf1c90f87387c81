package storage

import (
	"encoding/binary"
	"strings"

	gpprof "github.com/google/pprof/profile"
)

// Symbols holds the deduplicated strings, mappings, functions, locations and
// stacks of one head or one block. Every table reserves ID 0: the empty
// string, no mapping, no function, no location, and the root of the stack
// tree (the empty stack).
//
// Stacks are a tree of locations in root-to-leaf order: a stack is the ID of
// its leaf node, and a node's parent ID is always smaller than its own, so a
// single pass over the nodes in ID order visits parents first. A day of one
// service's CPU profiles repeats a few thousand stacks millions of times;
// storing one node per distinct (parent, location) keeps that small.
//
// Symbols is not safe for concurrent mutation; the head guards it.
type Symbols struct {
	Strings   []string
	Mappings  []Mapping
	Functions []Function
	Locations []Location
	Lines     []Line // the lines of all locations, sliced by Location.LinesOff/LinesLen

	// StackParent and StackLoc describe the stack tree, indexed by node ID.
	StackParent []uint32
	StackLoc    []uint32

	stringIdx   map[string]uint32
	mappingIdx  map[Mapping]uint32
	functionIdx map[Function]uint32
	locationIdx map[string]uint32
	stackIdx    map[uint64]uint32
	// wholeStacks maps a hash of a whole stack's location IDs to its
	// leaf node: one lookup per sample instead of one per frame. A hit
	// is checked against the tree, so collisions cost a walk, not a
	// wrong answer.
	wholeStacks map[uint64]uint32
	// stackHash is a content hash of each node's whole stack, independent of
	// IDs, so that state keyed by it (cumulative deltas) survives head cuts.
	stackHash []uint64
	locHash   []uint64
	keyBuf    []byte
}

// Mapping is a binary mapped into a process.
type Mapping struct {
	Start, Limit, Offset uint64
	File, BuildID        uint32 // string IDs
	HasFunctions         bool
	HasFilenames         bool
	HasLineNumbers       bool
	HasInlineFrames      bool
}

// Function is a function name with its source file.
type Function struct {
	Name, SystemName, Filename uint32 // string IDs
	StartLine                  int64
}

// Location is an address in a mapping with the source lines it stands for,
// innermost (inlined) first, as in pprof.
type Location struct {
	Mapping            uint32
	Address            uint64
	LinesOff, LinesLen uint32
	IsFolded           bool
}

// Line is one source position of a location.
type Line struct {
	Function uint32
	Line     int64
}

// NewSymbols returns empty tables with their reserved zero entries.
func NewSymbols() *Symbols {
	s := &Symbols{}
	s.initIndexes()
	s.Strings = []string{""}
	s.Mappings = []Mapping{{}}
	s.Functions = []Function{{}}
	s.Locations = []Location{{}}
	s.StackParent = []uint32{0}
	s.StackLoc = []uint32{0}
	s.stackHash = []uint64{0}
	s.locHash = []uint64{0}
	return s
}

func (s *Symbols) initIndexes() {
	s.stringIdx = map[string]uint32{"": 0}
	s.mappingIdx = map[Mapping]uint32{{}: 0}
	s.functionIdx = map[Function]uint32{{}: 0}
	s.locationIdx = map[string]uint32{}
	s.stackIdx = map[uint64]uint32{}
}

// String interns str and returns its ID.
func (s *Symbols) String(str string) uint32 {
	if id, ok := s.stringIdx[str]; ok {
		return id
	}
	id := uint32(len(s.Strings))
	s.Strings = append(s.Strings, str)
	s.stringIdx[str] = id
	return id
}

// LookupString returns the ID of str, if interned.
func (s *Symbols) LookupString(str string) (uint32, bool) {
	id, ok := s.stringIdx[str]
	return id, ok
}

func (s *Symbols) mapping(m Mapping) uint32 {
	if id, ok := s.mappingIdx[m]; ok {
		return id
	}
	id := uint32(len(s.Mappings))
	s.Mappings = append(s.Mappings, m)
	s.mappingIdx[m] = id
	return id
}

func (s *Symbols) function(f Function) uint32 {
	if id, ok := s.functionIdx[f]; ok {
		return id
	}
	id := uint32(len(s.Functions))
	s.Functions = append(s.Functions, f)
	s.functionIdx[f] = id
	return id
}

// location interns a location given by its mapping, address and lines.
func (s *Symbols) location(mapping uint32, addr uint64, folded bool, lines []Line) uint32 {
	k := s.keyBuf[:0]
	k = binary.AppendUvarint(k, uint64(mapping))
	k = binary.AppendUvarint(k, addr)
	if folded {
		k = append(k, 1)
	} else {
		k = append(k, 0)
	}
	for _, l := range lines {
		k = binary.AppendUvarint(k, uint64(l.Function))
		k = binary.AppendVarint(k, l.Line)
	}
	s.keyBuf = k
	if id, ok := s.locationIdx[string(k)]; ok {
		return id
	}
	id := uint32(len(s.Locations))
	s.Locations = append(s.Locations, Location{
		Mapping: mapping, Address: addr, IsFolded: folded,
		LinesOff: uint32(len(s.Lines)), LinesLen: uint32(len(lines)),
	})
	s.Lines = append(s.Lines, lines...)
	s.locationIdx[string(k)] = id
	s.locHash = append(s.locHash, s.contentHashLocation(id))
	return id
}

// contentHashLocation hashes what a location means (names, files, lines,
// binary and address) rather than its IDs, with the stable FNV-1a of
// hash.go: the hash keys persisted delta state.
func (s *Symbols) contentHashLocation(id uint32) uint64 {
	loc := s.Locations[id]
	m := s.Mappings[loc.Mapping]
	h := newFNV64().str(s.Strings[m.BuildID]).byte1(0).str(s.Strings[m.File]).byte1(0)
	h = h.u64(loc.Address - m.Start + m.Offset)
	for _, l := range s.LocationLines(id) {
		f := s.Functions[l.Function]
		h = h.str(s.Strings[f.Name]).byte1(0).str(s.Strings[f.Filename]).byte1(0)
		h = h.u64(uint64(l.Line))
	}
	return uint64(h)
}

// LocationLines returns the lines of location id, innermost first.
func (s *Symbols) LocationLines(id uint32) []Line {
	l := s.Locations[id]
	return s.Lines[l.LinesOff : l.LinesOff+l.LinesLen]
}

// stack returns the node for loc under parent, adding it when new.
func (s *Symbols) stack(parent, loc uint32) uint32 {
	k := uint64(parent)<<32 | uint64(loc)
	if id, ok := s.stackIdx[k]; ok {
		return id
	}
	id := uint32(len(s.StackParent))
	s.StackParent = append(s.StackParent, parent)
	s.StackLoc = append(s.StackLoc, loc)
	s.stackIdx[k] = id
	s.stackHash = append(s.stackHash, mix(s.stackHash[parent], s.locHash[loc]))
	return id
}

// StackHash returns a hash of the content of stack node id: equal stacks in
// different symbol tables hash equally.
func (s *Symbols) StackHash(id uint32) uint64 { return s.stackHash[id] }

// NumStacks is the number of stack tree nodes, the root included.
func (s *Symbols) NumStacks() int { return len(s.StackParent) }

// Importer interns the symbols of one pprof profile into a Symbols,
// remembering the IDs it gave each pprof location so that each is looked up
// once per profile.
type Importer struct {
	s      *Symbols
	locIDs []locID // by pprof location ID, when IDs are dense
	locs   map[*gpprof.Location]uint32
	maps   map[*gpprof.Mapping]uint32
	funcs  map[*gpprof.Function]uint32
	lines  []Line
	stackB []uint32
}

type locID struct {
	l  *gpprof.Location
	id uint32
}

// NewImporter returns an importer into s.
func NewImporter(s *Symbols) *Importer {
	return &Importer{s: s,
		locs:  make(map[*gpprof.Location]uint32),
		maps:  make(map[*gpprof.Mapping]uint32),
		funcs: make(map[*gpprof.Function]uint32)}
}

// Stack interns the stack of a pprof sample (leaf first, as pprof stores
// it) and returns its node ID.
func (im *Importer) Stack(locs []*gpprof.Location) uint32 {
	ids := im.stackB[:0]
	h := uint64(len(locs))
	for _, l := range locs {
		id := im.location(l)
		ids = append(ids, id)
		h = mix(h, uint64(id))
	}
	im.stackB = ids
	s := im.s
	if s.wholeStacks == nil {
		s.wholeStacks = make(map[uint64]uint32)
	}
	if node, ok := s.wholeStacks[h]; ok && s.isStack(node, ids) {
		return node
	}
	node := uint32(0)
	for i := len(ids) - 1; i >= 0; i-- {
		node = s.stack(node, ids[i])
	}
	s.wholeStacks[h] = node
	return node
}

// isStack reports whether node is the stack of the location IDs given leaf
// first.
func (s *Symbols) isStack(node uint32, leafFirst []uint32) bool {
	for _, id := range leafFirst {
		if node == 0 || s.StackLoc[node] != id {
			return false
		}
		node = s.StackParent[node]
	}
	return node == 0
}

// FoldedStack interns a stack of function names, root first, as the folded
// format gives it.
func (im *Importer) FoldedStack(frames []string) uint32 {
	node := uint32(0)
	for _, name := range frames {
		fn := im.s.function(Function{Name: im.s.String(WithoutGoShapes(name))})
		node = im.s.stack(node, im.s.location(0, 0, false, []Line{{Function: fn}}))
	}
	return node
}

func (im *Importer) location(l *gpprof.Location) uint32 {
	// pprof location IDs are usually 1..n: a slice beats a map.
	dense := l.ID > 0 && l.ID <= 1<<20
	if dense && l.ID < uint64(len(im.locIDs)) && im.locIDs[l.ID].l == l {
		return im.locIDs[l.ID].id
	}
	if id, ok := im.locs[l]; ok {
		return id
	}
	var mapping uint32
	if l.Mapping != nil {
		mapping = im.mapping(l.Mapping)
	}
	im.lines = im.lines[:0]
	for _, ln := range l.Line {
		var fn uint32
		if ln.Function != nil {
			fn = im.function(ln.Function)
		}
		im.lines = append(im.lines, Line{Function: fn, Line: ln.Line})
	}
	id := im.s.location(mapping, l.Address, l.IsFolded, im.lines)
	if dense {
		if l.ID >= uint64(len(im.locIDs)) {
			im.locIDs = append(im.locIDs, make([]locID, int(l.ID)+1-len(im.locIDs))...)
		}
		im.locIDs[l.ID] = locID{l, id}
	} else {
		im.locs[l] = id
	}
	return id
}

func (im *Importer) mapping(m *gpprof.Mapping) uint32 {
	if id, ok := im.maps[m]; ok {
		return id
	}
	id := im.s.mapping(Mapping{
		Start: m.Start, Limit: m.Limit, Offset: m.Offset,
		File: im.s.String(m.File), BuildID: im.s.String(m.BuildID),
		HasFunctions: m.HasFunctions, HasFilenames: m.HasFilenames,
		HasLineNumbers: m.HasLineNumbers, HasInlineFrames: m.HasInlineFrames,
	})
	im.maps[m] = id
	return id
}

func (im *Importer) function(f *gpprof.Function) uint32 {
	if id, ok := im.funcs[f]; ok {
		return id
	}
	id := im.s.function(Function{
		Name: im.s.String(WithoutGoShapes(f.Name)), SystemName: im.s.String(WithoutGoShapes(f.SystemName)),
		Filename: im.s.String(f.Filename), StartLine: f.StartLine,
	})
	im.funcs[f] = id
	return id
}

// goShape starts the type arguments that Go (1.21 and later) writes into
// the names of generic functions: slices.Sort[go.shape.[]int,go.shape.int].
const goShape = "[go.shape."

// WithoutGoShapes drops the type arguments from a Go function's name, as
// Pyroscope does at ingest. The runtime names a generic function after
// whichever instance it met first (golang/go#64528), so the arguments
// say nothing reliable, and they split one function into several.
func WithoutGoShapes(name string) string {
	if !strings.Contains(name, goShape) {
		return name
	}
	var b strings.Builder
	for {
		i := strings.Index(name, goShape)
		if i < 0 {
			b.WriteString(name)
			return b.String()
		}
		b.WriteString(name[:i])
		depth, j := 0, i
		for ; j < len(name); j++ {
			if name[j] == '[' {
				depth++
			} else if name[j] == ']' {
				depth--
				if depth == 0 {
					break
				}
			}
		}
		if j >= len(name) {
			// Unbalanced: keep the rest as it is.
			b.WriteString(name[i:])
			return b.String()
		}
		name = name[j+1:]
	}
}
