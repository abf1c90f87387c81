package jfr

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// labelsSnapshot is the dynamic labels the Pyroscope Java SDK sends beside a
// recording (the multipart field "labels"): samples carry a context ID, and
// a context is a set of label name and value string IDs. Its protobuf
// schema, from the SDK and jfr-parser:
//
//	message Context        { map<int64, int64> labels = 1; }
//	message LabelsSnapshot { map<int64, Context> contexts = 1;
//	                         map<int64, string> strings = 2; }
type labelsSnapshot struct {
	contexts map[int64]map[int64]int64 // context ID: name ID: value ID
	strings  map[int64]string
}

var errWireType = errors.New("unexpected wire type")

// parseLabelsSnapshot decodes a LabelsSnapshot message. Unknown fields are
// skipped, as protobuf decoders do; a map entry without key or value takes
// the zero value, as in protobuf.
func parseLabelsSnapshot(b []byte) (*labelsSnapshot, error) {
	s := &labelsSnapshot{contexts: map[int64]map[int64]int64{}, strings: map[int64]string{}}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch num {
		case 1:
			id, ctx, err := mapEntry(typ, v)
			if err != nil {
				return fmt.Errorf("contexts: %w", err)
			}
			pairs, err := parseContext(ctx)
			if err != nil {
				return fmt.Errorf("contexts: %w", err)
			}
			s.contexts[id] = pairs
		case 2:
			id, str, err := mapEntry(typ, v)
			if err != nil {
				return fmt.Errorf("strings: %w", err)
			}
			s.strings[id] = string(str)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// mapEntry decodes the entry of a map<int64, message or string> field,
// whose wire type is typ: the key (field 1, a varint) and the value's
// bytes (field 2).
func mapEntry(typ protowire.Type, b []byte) (key int64, value []byte, err error) {
	if typ != protowire.BytesType {
		return 0, nil, errWireType
	}
	err = fields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch num {
		case 1:
			n, err := varint(typ, v)
			key = int64(n)
			return err
		case 2:
			if typ != protowire.BytesType {
				return errWireType
			}
			value = v
		}
		return nil
	})
	return key, value, err
}

// parseContext decodes a Context message: label name ID to value ID.
func parseContext(b []byte) (map[int64]int64, error) {
	pairs := map[int64]int64{}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num != 1 {
			return nil
		}
		if typ != protowire.BytesType {
			return errWireType
		}
		var k, val uint64
		err := fields(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
			var err error
			switch num {
			case 1:
				k, err = varint(typ, v)
			case 2:
				val, err = varint(typ, v)
			}
			return err
		})
		pairs[int64(k)] = int64(val) // a map keeps the last value of a key
		return err
	})
	return pairs, err
}

// fields calls f with each field of message b; v holds a varint's bytes,
// a length-delimited field's contents, or a fixed field's bytes.
func fields(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v []byte
		switch typ {
		case protowire.BytesType:
			var m int
			v, m = protowire.ConsumeBytes(b)
			n = m
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n >= 0 {
				v = b[:n]
			}
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := f(num, typ, v); err != nil {
			return err
		}
	}
	return nil
}

// varint decodes the bytes of a varint field.
func varint(typ protowire.Type, v []byte) (uint64, error) {
	if typ != protowire.VarintType {
		return 0, errWireType
	}
	n, m := protowire.ConsumeVarint(v)
	if m < 0 {
		return 0, protowire.ParseError(m)
	}
	return n, nil
}
