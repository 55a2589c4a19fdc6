package store

// The binary COPY encoding of orders, straight from the Order fields.

import (
	"encoding/binary"
	"io"
	"math"
	"time"

	"github.com/foodpipe/foodpipe/pkg/order"
)

// copySource is an io.Reader of a binary COPY stream of orders, encoded
// straight from the Order fields into one reused buffer: no per-row
// allocation, no reflection, no []any boxing as pgx's CopyFrom would need.
// It holds at most one read's worth of bytes (pgconn reads 64 KiB at a
// time) plus one row.
type copySource struct {
	rows []*order.Order
	pull func() *order.Order // instead of rows, when set
	next int
	buf  []byte
	off  int
	done bool
}

// pgCopyHeader is the binary COPY signature, flags and header extension
// length (PostgreSQL docs, "Binary Format").
var pgCopyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

func (s *copySource) reset(rows []*order.Order) {
	s.rows, s.next, s.off, s.done = rows, 0, 0, false
	if s.buf == nil {
		s.buf = make([]byte, 0, 80<<10)
	}
	s.buf = append(s.buf[:0], pgCopyHeader...)
}

// Read fills p with the next bytes of the stream, encoding rows as needed.
func (s *copySource) Read(p []byte) (int, error) {
	if s.off > 0 {
		n := copy(s.buf, s.buf[s.off:])
		s.buf, s.off = s.buf[:n], 0
	}
	for len(s.buf) < len(p) && !s.done {
		if s.pull != nil {
			if o := s.pull(); o != nil {
				s.buf = appendCopyRow(s.buf, o)
				continue
			}
			s.pull = nil
			s.rows, s.next = nil, 0
		}
		if s.next < len(s.rows) {
			s.buf = appendCopyRow(s.buf, s.rows[s.next])
			s.next++
		} else {
			s.buf = binary.BigEndian.AppendUint16(s.buf, 0xffff) // trailer: field count -1
			s.done = true
		}
	}
	if len(s.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.buf)
	s.off = n
	return n, nil
}

// appendCopyRow appends one row of the binary COPY format: the field count,
// then each field as a 32-bit length and the type's binary form.
func appendCopyRow(b []byte, o *order.Order) []byte {
	b = binary.BigEndian.AppendUint16(b, numOrderColumns)
	b = appendText(b, o.OrderID)
	b = appendText(b, o.CustomerID)
	b = appendText(b, o.CustomerName)
	b = appendText(b, o.CustomerEmail)
	b = appendJSONB(b, o)
	b = appendNumericCents(b, o.TotalAmount)
	b = appendText(b, o.Status)
	return appendTimestamptz(b, o.CreatedAt)
}

// appendText: varchar's binary form is its text; the server checks the
// encoding (invalid UTF-8 and NUL are refused, SQLSTATE 22021) and the
// length.
func appendText(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// appendJSONB: jsonb's binary form is a version byte, 1, and the JSON text,
// which the server parses as it would the text form.
func appendJSONB(b []byte, o *order.Order) []byte {
	at := len(b)
	b = append(b, 0, 0, 0, 0, 1)
	if o.RawItems != nil {
		b = append(b, o.RawItems...)
	} else {
		b = order.AppendItemsJSON(b, o.Items)
	}
	binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	return b
}

// Binary numeric: ndigits, weight, sign and display scale as int16, then
// ndigits base-10000 digits, most significant first; the value is
// Σ digit[i] × 10000^(weight−i).
const (
	numericPositive = 0x0000
	numericNegative = 0x4000
	centsScale      = 2
)

// appendNumericCents writes c/100 exactly, with scale 2, without big.Int:
// the integer part takes at most five base-10000 digits and the cents one
// more (cents × 100, as the two decimals are the first four of the
// fraction). Amounts beyond NUMERIC(10,2) are left for the server to refuse
// (SQLSTATE 22003), like every other content error.
func appendNumericCents(b []byte, c order.Cents) []byte {
	sign := uint16(numericPositive)
	u := uint64(c)
	if c < 0 {
		sign = numericNegative
		u = -u // exact for math.MinInt64 too, as uint64
	}
	units, frac := u/100, u%100
	var digits [6]uint16
	var rev [5]uint16
	ni := 0
	for x := units; x > 0; x /= 10000 {
		rev[ni] = uint16(x % 10000)
		ni++
	}
	n := 0
	for i := ni - 1; i >= 0; i-- {
		digits[n] = rev[i]
		n++
	}
	weight := ni - 1
	if frac != 0 {
		digits[n] = uint16(frac * 100)
		n++
	}
	for n > 0 && digits[n-1] == 0 { // the normal form has no trailing zero digits
		n--
	}
	if n == 0 { // zero: no digits, weight 0, positive
		weight, sign = 0, numericPositive
	}
	b = binary.BigEndian.AppendUint32(b, uint32(8+2*n))
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	b = binary.BigEndian.AppendUint16(b, uint16(int16(weight)))
	b = binary.BigEndian.AppendUint16(b, sign)
	b = binary.BigEndian.AppendUint16(b, centsScale)
	for _, d := range digits[:n] {
		b = binary.BigEndian.AppendUint16(b, d)
	}
	return b
}

// PostgreSQL counts timestamps in microseconds from 2000-01-01 00:00 UTC.
const pgEpochUnixMicros = 946_684_800 * 1_000_000

// Years outside what an int64 of microseconds from 2000 can hold without
// overflow are sent as a value the server refuses as out of range.
const (
	minTimestampYear = -4713
	maxTimestampYear = 294276
)

// appendTimestamptz writes t in microseconds since the PostgreSQL epoch,
// truncating nanoseconds (toward the past), as the column stores them.
func appendTimestamptz(b []byte, t time.Time) []byte {
	var us int64
	if y := t.Year(); y < minTimestampYear || y > maxTimestampYear {
		us = math.MaxInt64 - 1 // not ±infinity (MinInt64, MaxInt64): refused, SQLSTATE 22008
	} else {
		us = t.UnixMicro() - pgEpochUnixMicros
	}
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(us))
}
