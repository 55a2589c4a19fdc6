package order

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends o as compact wire-format-v1 JSON to dst and returns the
// extended buffer. It never allocates when dst has room, which is what lets
// the producer reuse one buffer for every record.
//
// Fields come in SPEC order. Money always has exactly two decimals (9.00,
// not 9): valid JSON, and the same text whoever reads it. created_at is
// written in UTC with exactly six fractional digits, truncating any
// nanoseconds, because PostgreSQL keeps microseconds. Items is encoded
// (RawItems is ignored); a nil Items is written as []. Strings are escaped
// as RFC 8259 requires (quote, backslash, control characters); invalid
// UTF-8 is replaced by U+FFFD, as encoding/json does, so the output is
// always valid JSON (Validate rejects such orders).
func AppendJSON(dst []byte, o *Order) []byte {
	dst = append(dst, `{"order_id":`...)
	dst = appendString(dst, o.OrderID)
	dst = append(dst, `,"customer_id":`...)
	dst = appendString(dst, o.CustomerID)
	dst = append(dst, `,"customer_name":`...)
	dst = appendString(dst, o.CustomerName)
	dst = append(dst, `,"customer_email":`...)
	dst = appendString(dst, o.CustomerEmail)
	dst = append(dst, `,"items":`...)
	dst = AppendItemsJSON(dst, o.Items)
	dst = append(dst, `,"total_amount":`...)
	dst = o.TotalAmount.appendTo(dst)
	dst = append(dst, `,"status":`...)
	dst = appendString(dst, o.Status)
	dst = append(dst, `,"created_at":"`...)
	dst = appendTime(dst, o.CreatedAt)
	return append(dst, `"}`...)
}

// AppendItemsJSON appends items as the JSON array AppendJSON writes for
// them. It is the jsonb value for orders that did not come from Decode
// (generated ones), which have no RawItems.
func AppendItemsJSON(dst []byte, items []Item) []byte {
	dst = append(dst, '[')
	for i := range items {
		it := &items[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"item_id":`...)
		dst = appendString(dst, it.ItemID)
		dst = append(dst, `,"name":`...)
		dst = appendString(dst, it.Name)
		dst = append(dst, `,"quantity":`...)
		dst = strconv.AppendInt(dst, int64(it.Quantity), 10)
		dst = append(dst, `,"price":`...)
		dst = it.Price.appendTo(dst)
		dst = append(dst, `,"subtotal":`...)
		dst = it.Subtotal.appendTo(dst)
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Runs of bytes that need no escape
// are copied in one append, the common case for names and ids.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// One table look-up per byte for the common case, printable ASCII
		// that needs no escape: the profile of produce at --rate 0 showed
		// the three comparisons it replaces.
		for i < len(s) && plainASCII[s[i]] {
			i++
		}
		if i == len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\uFFFD"...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// plainASCII marks the bytes a JSON string holds as they are, with no
// escape: printable ASCII but for '"' and '\\'. appendString copies them,
// the decoder's str passes over them.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendTime writes t as 2006-01-02T15:04:05.000000Z by hand: it is on the
// producer's hot path and time.AppendFormat costs several times more.
func appendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		// Not representable in RFC 3339; Validate rejects such orders.
		return t.AppendFormat(dst, "2006-01-02T15:04:05.000000Z07:00")
	}
	hour, minute, sec := t.Clock()
	us := t.Nanosecond() / 1000
	dst = appendDigits(dst, year, 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int(month), 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, day, 2)
	dst = append(dst, 'T')
	dst = appendDigits(dst, hour, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, minute, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, sec, 2)
	dst = append(dst, '.')
	dst = appendDigits(dst, us, 6)
	return append(dst, 'Z')
}

// appendDigits appends the n low decimal digits of v (v ≥ 0), zero-padded.
func appendDigits(dst []byte, v, n int) []byte {
	var b [8]byte
	for i := n - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, b[:n]...)
}
