package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/google/pprof/profile"
	"github.com/hearth-profiler/hearth/bench/internal/hearthproc"
)

// The stacks of the profiles: a request's samples run under net/http's
// server and the route's handler, then either the service's own code (the
// stacks of a real Go CPU profile of bench/corpus, its main.* functions
// renamed into the service's module) or, during a client span, the
// client library's code. Samples without a span are the runtime's
// background work of the same corpus (GC, scavenger, sweeper).

// symtab interns functions, locations and stacks for the profiles.
type symtab struct {
	funcs    map[string]uint64
	funcName []string // by ID-1
	locs     map[string]uint64
	locFuncs [][]uint64 // by ID-1: function IDs, innermost first (pprof's Line order)
	stacks   map[string]uint32
	stackLoc [][]uint64 // by stack index: location IDs, leaf first
}

func newSymtab() *symtab {
	return &symtab{funcs: map[string]uint64{}, locs: map[string]uint64{}, stacks: map[string]uint32{}}
}

func (t *symtab) fn(name string) uint64 {
	if id, ok := t.funcs[name]; ok {
		return id
	}
	t.funcName = append(t.funcName, name)
	id := uint64(len(t.funcName))
	t.funcs[name] = id
	return id
}

// loc interns a location of the given function names, innermost first
// (more than one when functions were inlined).
func (t *symtab) loc(names ...string) uint64 {
	ids := make([]uint64, len(names))
	for i, n := range names {
		ids[i] = t.fn(n)
	}
	key := fmt.Sprint(ids)
	if id, ok := t.locs[key]; ok {
		return id
	}
	t.locFuncs = append(t.locFuncs, ids)
	id := uint64(len(t.locFuncs))
	t.locs[key] = id
	return id
}

// stack interns a stack of locations, leaf first.
func (t *symtab) stack(locs []uint64) uint32 {
	key := fmt.Sprint(locs)
	if id, ok := t.stacks[key]; ok {
		return id
	}
	t.stackLoc = append(t.stackLoc, slices.Clone(locs))
	id := uint32(len(t.stackLoc) - 1)
	t.stacks[key] = id
	return id
}

// frame is one location of a recorded stack: its functions, innermost
// first.
type frame []string

// weightedStacks are stacks (leaf first) with their share of the samples.
type weightedStacks struct {
	stacks [][]frame
	cum    []float64
}

func (w *weightedStacks) add(s []frame, weight float64) {
	w.stacks = append(w.stacks, s)
	w.cum = append(w.cum, weight+lastOf(w.cum))
}

func lastOf(cum []float64) float64 {
	if len(cum) == 0 {
		return 0
	}
	return cum[len(cum)-1]
}

// pick returns the stack that u in [0,1) falls on.
func (w *weightedStacks) pick(u float64) int {
	i, _ := slices.BinarySearch(w.cum, u*lastOf(w.cum))
	return min(i, len(w.cum)-1)
}

// corpusStacks are the recorded profiles' stacks: per profile, the work
// below the corpus program's own functions (main.fNN and what they call),
// and, from all of them, the runtime's background work.
type corpusStacks struct {
	work       []*weightedStacks
	background *weightedStacks
}

// workRoot is where the corpus program's work starts in a stack: its
// generated functions f00..f49.
var workRoot = regexp.MustCompile(`^main\.f\d+$`)

func loadCorpusStacks(dir string) (*corpusStacks, error) {
	files, err := hearthproc.ReadCorpusCPU(dir)
	if err != nil {
		return nil, err
	}
	c := &corpusStacks{background: &weightedStacks{}}
	for _, f := range files {
		p, err := profile.ParseData(f.Data)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", f.Name, err)
		}
		work := &weightedStacks{}
		for _, s := range p.Sample {
			st := make([]frame, len(s.Location))
			for i, l := range s.Location {
				for _, ln := range l.Line {
					st[i] = append(st[i], ln.Function.Name)
				}
			}
			// The outermost frame of the program's work, counted from
			// the root.
			top := -1
			for i := len(st) - 1; i >= 0 && top < 0; i-- {
				if slices.ContainsFunc(st[i], workRoot.MatchString) {
					top = i
				}
			}
			if top >= 0 {
				work.add(st[:top+1], float64(s.Value[0]))
			} else {
				c.background.add(st, float64(s.Value[0]))
			}
		}
		if len(work.stacks) == 0 {
			return nil, fmt.Errorf("corpus %s: no stack under main.fNN: is it bench/corpus?", f.Name)
		}
		c.work = append(c.work, work)
	}
	if len(c.background.stacks) == 0 {
		return nil, fmt.Errorf("corpus %s: no background stacks (GC, scavenger)", dir)
	}
	return c, nil
}

// rename puts the corpus program's functions into a service's module.
func rename(f frame, pkg string) []string {
	out := make([]string, len(f))
	for i, n := range f {
		if rest, ok := strings.CutPrefix(n, "main."); ok {
			n = pkg + "." + rest
		}
		out[i] = n
	}
	return out
}

// serverFrames are the frames above every handler, root first: what a
// Go HTTP server instrumented with otelhttp runs a request under.
var serverFrames = []string{
	"net/http.(*conn).serve",
	"net/http.serverHandler.ServeHTTP",
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp.(*middleware).serveHTTP",
	"net/http.HandlerFunc.ServeHTTP",
	"net/http.(*ServeMux).ServeHTTP",
}

// handlerName is a route's handler function in the service's module:
// "PUT /api/v1/devices/{id}" gives api.(*Server).putDevicesByID.
func handlerName(module, method, template string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	for _, seg := range strings.Split(strings.TrimPrefix(template, "/api/v1/"), "/") {
		switch {
		case seg == "":
		case seg == "{id}":
			b.WriteString("ByID")
		default:
			b.WriteString(strings.ToUpper(seg[:1]) + seg[1:])
		}
	}
	return module + "/internal/api.(*Server)." + b.String()
}

// clientCode is the code a handler runs during a client span, by what
// the span calls: a few stacks each, root first, below the handler.
var clientCode = map[string][][]string{
	"postgresql": {
		{"database/sql.(*DB).QueryContext", "database/sql.(*DB).queryDC", "github.com/jackc/pgx/v5/stdlib.(*Conn).QueryContext",
			"github.com/jackc/pgx/v5.(*Conn).Query", "github.com/jackc/pgx/v5/pgconn.(*PgConn).ExecParams",
			"github.com/jackc/pgx/v5/pgconn.(*PgConn).flushWithPotentialWriteReadDeadlock", "net.(*conn).Write", "internal/poll.(*FD).Write", "syscall.Syscall"},
		{"database/sql.(*Rows).Next", "database/sql.(*Rows).nextLocked", "github.com/jackc/pgx/v5/stdlib.(*Rows).Next",
			"github.com/jackc/pgx/v5/pgconn.(*ResultReader).NextRow", "github.com/jackc/pgx/v5/pgproto3.(*Frontend).Receive",
			"github.com/jackc/pgx/v5/pgproto3.(*DataRow).Decode"},
		{"database/sql.(*Rows).Scan", "database/sql.convertAssignRows", "runtime.mallocgc"},
	},
	"mysql": {
		{"database/sql.(*DB).QueryContext", "database/sql.(*DB).queryDC", "github.com/go-sql-driver/mysql.(*mysqlConn).QueryContext",
			"github.com/go-sql-driver/mysql.(*mysqlConn).query", "github.com/go-sql-driver/mysql.(*mysqlConn).writeCommandPacketStr",
			"net.(*conn).Write", "internal/poll.(*FD).Write", "syscall.Syscall"},
		{"database/sql.(*Rows).Next", "database/sql.(*Rows).nextLocked", "github.com/go-sql-driver/mysql.(*textRows).readRow",
			"github.com/go-sql-driver/mysql.(*mysqlConn).readPacket", "github.com/go-sql-driver/mysql.(*buffer).readNext"},
		{"database/sql.(*Rows).Scan", "database/sql.convertAssignRows", "runtime.mallocgc"},
	},
	"mongodb": {
		{"go.mongodb.org/mongo-driver/v2/mongo.(*Collection).Find", "go.mongodb.org/mongo-driver/v2/x/mongo/driver/operation.(*Find).Execute",
			"go.mongodb.org/mongo-driver/v2/x/mongo/driver.Operation.Execute", "go.mongodb.org/mongo-driver/v2/x/mongo/driver.Operation.createMsgWireMessage",
			"go.mongodb.org/mongo-driver/v2/bson.MarshalAppend"},
		{"go.mongodb.org/mongo-driver/v2/mongo.(*Collection).Find", "go.mongodb.org/mongo-driver/v2/x/mongo/driver/operation.(*Find).Execute",
			"go.mongodb.org/mongo-driver/v2/x/mongo/driver.Operation.Execute", "go.mongodb.org/mongo-driver/v2/x/mongo/driver.Operation.readWireMessage",
			"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology.(*connection).read", "io.ReadAtLeast", "internal/poll.(*FD).Read", "syscall.Syscall"},
		{"go.mongodb.org/mongo-driver/v2/mongo.(*Cursor).All", "go.mongodb.org/mongo-driver/v2/bson.Unmarshal", "reflect.Value.SetString"},
	},
	"redis": {
		{"github.com/redis/go-redis/v9.(*baseClient).process", "github.com/redis/go-redis/v9.(*baseClient)._process",
			"github.com/redis/go-redis/v9/internal/pool.(*Conn).WithWriter", "github.com/redis/go-redis/v9/internal/proto.(*Writer).WriteArgs",
			"bufio.(*Writer).Flush", "internal/poll.(*FD).Write", "syscall.Syscall"},
		{"github.com/redis/go-redis/v9.(*baseClient).process", "github.com/redis/go-redis/v9.(*baseClient)._process",
			"github.com/redis/go-redis/v9/internal/pool.(*Conn).WithReader", "github.com/redis/go-redis/v9/internal/proto.(*Reader).ReadReply",
			"bufio.(*Reader).fill", "internal/poll.(*FD).Read", "syscall.Syscall"},
	},
	"http": {
		{"net/http.(*Client).Do", "net/http.(*Client).send", "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp.(*Transport).RoundTrip",
			"net/http.(*Transport).roundTrip", "net/http.(*persistConn).roundTrip", "runtime.chansend1"},
		{"net/http.(*Client).Do", "net/http.(*Client).send", "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp.(*Transport).RoundTrip",
			"net/http.(*Transport).roundTrip", "net/http.(*Transport).getConn", "runtime.mapaccess2"},
		{"encoding/json.(*Decoder).Decode", "encoding/json.(*decodeState).object", "encoding/json.(*decodeState).literalStore"},
	},
}
