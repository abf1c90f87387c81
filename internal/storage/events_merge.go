package storage

import (
	"context"
	"fmt"
	"sort"

	"github.com/hearth-profiler/hearth/internal/events"
)

// mergeEvents writes the events of srcs, each in block order, as one run
// in block order. Sources cut one after another hold runs of a service
// that do not overlap in time, so rows are copied in runs, column by
// column, rather than one at a time.
func mergeEvents(ctx context.Context, w *blockWriter, srcs []*block) error {
	counts := map[attrKT]int64{}
	plain := map[attrKT]bool{}
	other := false
	var cursors []*eventsCursor
	for _, b := range srcs {
		if b.ev == nil {
			continue
		}
		for _, c := range b.meta.Events.Columns {
			t, _ := parseType(c.Type)
			counts[attrKT{c.Key, t}] += c.Values
			plain[attrKT{c.Key, t}] = plain[attrKT{c.Key, t}] || c.Plain
		}
		other = other || b.meta.Events.Other > 0
		cursors = append(cursors, &eventsCursor{b: b})
	}
	if len(cursors) == 0 {
		return nil
	}
	cols, capped := planEventColumns(counts, plain)
	return w.writeEvents(cols, other || capped, func(ew *eventsWriter) error {
		for _, c := range cursors {
			if err := c.next(); err != nil {
				return err
			}
		}
		var out events.Batch
		resetBatch(&out, 0)
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			// The source with the smallest next row, and the smallest
			// next row of the others, which ends its run.
			var best, second *eventsCursor
			for _, c := range cursors {
				if c.done() {
					continue
				}
				switch {
				case best == nil || c.less(best):
					best, second = c, best
				case second == nil || c.less(second):
					second = c
				}
			}
			if best == nil {
				break
			}
			end := best.bt.Len
			if second != nil {
				svc, t := second.key()
				bt := best.bt
				end = best.i + sort.Search(bt.Len-best.i, func(k int) bool {
					j := best.i + k
					return bt.Service[j] > svc || bt.Service[j] == svc && bt.Start[j] > t
				})
			}
			end = min(end, best.i+eventsWriteBatch-out.Len)
			appendRows(&out, best.bt, best.i, end)
			best.i = end
			if out.Len >= eventsWriteBatch {
				if err := ew.add(&out); err != nil {
					return err
				}
				resetBatch(&out, 0)
			}
			if best.i >= best.bt.Len {
				if err := best.next(); err != nil {
					return err
				}
			}
		}
		if out.Len > 0 {
			return ew.add(&out)
		}
		return nil
	})
}

// eventsCursor walks a block's events, a row group at a time.
type eventsCursor struct {
	b     *block
	group int // the next row group to read
	bt    *events.Batch
	i     int
}

var allEventColumns = events.Columns{Intrinsics: events.AllIntrinsics | events.ColDetail, AllAttrs: true}

func (c *eventsCursor) next() error {
	c.bt, c.i = nil, 0
	for c.group < len(c.b.ev.groups) {
		var bt events.Batch
		err := func() (err error) {
			defer recoverParquet(&err)
			return c.b.ev.readGroup(c.group, allEventColumns, &bt, nil)
		}()
		c.group++
		if err != nil {
			return fmt.Errorf("read block %s: events row group %d: %w", c.b.meta.ID, c.group-1, err)
		}
		if bt.Len > 0 {
			c.bt = &bt
			return nil
		}
	}
	return nil
}

func (c *eventsCursor) done() bool { return c.bt == nil }

func (c *eventsCursor) key() (string, int64) { return c.bt.Service[c.i], c.bt.Start[c.i] }

func (c *eventsCursor) less(o *eventsCursor) bool {
	s1, t1 := c.key()
	s2, t2 := o.key()
	return s1 < s2 || s1 == s2 && t1 < t2
}

// appendRows appends rows [lo, hi) of src to dst; both hold every column.
func appendRows(dst, src *events.Batch, lo, hi int) {
	n := dst.Len
	dst.Start = append(dst.Start, src.Start[lo:hi]...)
	dst.Duration = append(dst.Duration, src.Duration[lo:hi]...)
	dst.TraceID = append(dst.TraceID, src.TraceID[lo:hi]...)
	dst.SpanID = append(dst.SpanID, src.SpanID[lo:hi]...)
	dst.ParentID = append(dst.ParentID, src.ParentID[lo:hi]...)
	dst.Service = append(dst.Service, src.Service[lo:hi]...)
	dst.Name = append(dst.Name, src.Name[lo:hi]...)
	dst.Kind = append(dst.Kind, src.Kind[lo:hi]...)
	dst.Status = append(dst.Status, src.Status[lo:hi]...)
	dst.StatusMessage = append(dst.StatusMessage, src.StatusMessage[lo:hi]...)
	dst.SpanEvents = append(dst.SpanEvents, src.SpanEvents[lo:hi]...)
	dst.Links = append(dst.Links, src.Links[lo:hi]...)
	dst.Len = n + hi - lo
	for k, sc := range src.Attrs {
		dc := dst.Attrs[k]
		if dc == nil {
			dc = &events.Column{}
			dst.Attrs[k] = dc
		}
		dc.Types = append(padTo(dc.Types, n), sc.Types[lo:hi]...)
		if sc.Str != nil {
			dc.Str = append(padTo(dc.Str, n), sc.Str[lo:hi]...)
		}
		if sc.Num != nil {
			dc.Num = append(padTo(dc.Num, n), sc.Num[lo:hi]...)
		}
	}
	for _, dc := range dst.Attrs {
		dc.Types = padTo(dc.Types, dst.Len)
		if dc.Str != nil {
			dc.Str = padTo(dc.Str, dst.Len)
		}
		if dc.Num != nil {
			dc.Num = padTo(dc.Num, dst.Len)
		}
	}
}

// padTo extends s with zero values to n entries.
func padTo[T any](s []T, n int) []T {
	for len(s) < n {
		var zero T
		s = append(s, zero)
	}
	return s
}
