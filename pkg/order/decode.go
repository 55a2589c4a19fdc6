package order

import (
	"strconv"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds nesting (objects and arrays, the order itself included)
// so a hostile record cannot exhaust the stack while unknown fields are
// skipped. encoding/json allows 10000; any real order nests 3 deep.
const maxDepth = 1000

// Bits recording which fields of the order object Decode has seen.
const (
	seenOrderID = 1 << iota
	seenCustomerID
	seenCustomerName
	seenCustomerEmail
	seenItems
	seenTotalAmount
	seenStatus
	seenCreatedAt
	seenAllOrder = 1<<iota - 1
)

var orderFields = [...]string{"order_id", "customer_id", "customer_name", "customer_email",
	"items", "total_amount", "status", "created_at"}

// Bits recording which fields of an item object Decode has seen.
const (
	seenItemID = 1 << iota
	seenName
	seenQuantity
	seenPrice
	seenSubtotal
	seenAllItem = 1<<iota - 1
)

var itemFields = [...]string{"item_id", "name", "quantity", "price", "subtotal"}

// Decode parses data, one wire-format-v1 order, into o. Any failure is a
// *DecodeError, and o's contents are then unspecified.
//
// Decode is strict: data must be one JSON object (RFC 8259, UTF-8, nothing
// but whitespace after it), every field of the SPEC must be present exactly
// once with its JSON type — a missing field is a DecodeError, not something
// left for Validate — and money must be exact cents (see ParseCents).
// quantity must be an integer literal (2, not 2.0 or 2e0). created_at is
// whatever time.Parse accepts for time.RFC3339Nano (so an upper-case T and
// Z, any offset, any number of fractional digits), converted to UTC at full
// precision, and must fall in years 0000–9999 once in UTC. Unknown
// fields, at the top level or inside items, are skipped whatever they hold.
// See the package documentation for the restrictions beyond RFC 8259.
//
// Decode reuses the capacity of o.Items. Text fields share one copy of data
// (a single allocation, more only for strings with escapes), and
// o.RawItems aliases data itself.
func Decode(data []byte, o *Order) error {
	items := o.Items[:0]
	*o = Order{Items: items}
	d := decoder{s: string(data), data: data, item: -1}
	return d.order(o)
}

// decoder scans a copy of the input as a string, so that every decoded
// string without escapes is a substring of that one copy.
type decoder struct {
	s     string
	data  []byte
	i     int
	depth int

	// Where the decoder is, for error messages: top-level field, item index
	// (-1 outside items) and item field.
	top  string
	item int
	sub  string
}

func (d *decoder) order(o *Order) error {
	d.ws()
	if d.i == len(d.s) {
		if len(d.s) == 0 {
			return d.fail("empty input, want a JSON object")
		}
		return d.fail("only whitespace, want a JSON object")
	}
	if d.s[d.i] != '{' {
		return d.wrongType("object")
	}
	d.depth++
	d.i++
	seen, err := d.fields(&d.top, orderFieldBit, func(bit uint) error { return d.orderField(o, bit) })
	if err != nil {
		return err
	}
	d.top = ""
	d.ws()
	if d.i != len(d.s) {
		return d.fail("trailing data after the object at offset " + strconv.Itoa(d.i))
	}
	if seen != seenAllOrder {
		return d.missing(seen, orderFields[:])
	}
	return nil
}

func orderFieldBit(key string) uint {
	switch key {
	case "order_id":
		return seenOrderID
	case "customer_id":
		return seenCustomerID
	case "customer_name":
		return seenCustomerName
	case "customer_email":
		return seenCustomerEmail
	case "items":
		return seenItems
	case "total_amount":
		return seenTotalAmount
	case "status":
		return seenStatus
	case "created_at":
		return seenCreatedAt
	}
	return 0
}

func itemFieldBit(key string) uint {
	switch key {
	case "item_id":
		return seenItemID
	case "name":
		return seenName
	case "quantity":
		return seenQuantity
	case "price":
		return seenPrice
	case "subtotal":
		return seenSubtotal
	}
	return 0
}

// missing reports the first field, in SPEC order, whose bit is not in seen.
func (d *decoder) missing(seen uint, names []string) error {
	for k, name := range names {
		if seen&(1<<k) == 0 {
			return d.fail("missing field " + strconv.Quote(name))
		}
	}
	return nil
}

func (d *decoder) items(o *Order) error {
	if d.i >= len(d.s) || d.s[d.i] != '[' {
		return d.wrongType("array")
	}
	start := d.i
	if err := d.enter(); err != nil {
		return err
	}
	d.ws()
	if d.i < len(d.s) && d.s[d.i] == ']' {
		d.i++
	} else {
		for n := 0; ; n++ {
			d.ws()
			d.item = n
			o.Items = append(o.Items, Item{})
			if err := d.decodeItem(&o.Items[n]); err != nil {
				return err
			}
			if more, err := d.next(']'); err != nil {
				return err
			} else if !more {
				break
			}
		}
	}
	d.depth--
	d.item, d.sub = -1, ""
	o.RawItems = d.data[start:d.i:d.i]
	return nil
}

func (d *decoder) decodeItem(it *Item) error {
	if d.i >= len(d.s) || d.s[d.i] != '{' {
		return d.wrongType("object")
	}
	if err := d.enter(); err != nil {
		return err
	}
	seen, err := d.fields(&d.sub, itemFieldBit, func(bit uint) error { return d.itemField(it, bit) })
	if err != nil {
		return err
	}
	d.depth--
	d.sub = ""
	if seen != seenAllItem {
		return d.missing(seen, itemFields[:])
	}
	return nil
}

// enter steps into an object or array at d.i, bounding the depth.
func (d *decoder) enter() error {
	d.depth++
	if d.depth > maxDepth {
		return d.fail("nesting deeper than " + strconv.Itoa(maxDepth) + " levels")
	}
	d.i++
	return nil
}

// orderField decodes the value of the order's member bit.
func (d *decoder) orderField(o *Order, bit uint) (err error) {
	switch bit {
	case seenOrderID:
		o.OrderID, err = d.stringValue()
	case seenCustomerID:
		o.CustomerID, err = d.stringValue()
	case seenCustomerName:
		o.CustomerName, err = d.stringValue()
	case seenCustomerEmail:
		o.CustomerEmail, err = d.stringValue()
	case seenItems:
		err = d.items(o)
	case seenTotalAmount:
		o.TotalAmount, err = d.money()
	case seenStatus:
		o.Status, err = d.stringValue()
	case seenCreatedAt:
		o.CreatedAt, err = d.time()
	}
	return err
}

// itemField decodes the value of the item's member bit.
func (d *decoder) itemField(it *Item, bit uint) (err error) {
	switch bit {
	case seenItemID:
		it.ItemID, err = d.stringValue()
	case seenName:
		it.Name, err = d.stringValue()
	case seenQuantity:
		it.Quantity, err = d.integer()
	case seenPrice:
		it.Price, err = d.money()
	case seenSubtotal:
		it.Subtotal, err = d.money()
	}
	return err
}

// fields reads the members of an object whose '{' was consumed, up to and
// including its '}'. For each member it sets *name (for error messages),
// refuses a duplicate, and calls set with the member's bit from bitOf; a
// member the wire format does not name (bit 0) is skipped, whatever it
// holds. It returns the bits of the members seen.
func (d *decoder) fields(name *string, bitOf func(string) uint, set func(bit uint) error) (uint, error) {
	var seen uint
	d.ws()
	if d.i < len(d.s) && d.s[d.i] == '}' {
		d.i++
		return seen, nil
	}
	for {
		d.ws()
		*name = "" // a syntax error before the next name belongs to no field
		key, err := d.key()
		if err != nil {
			return seen, err
		}
		*name = key
		bit := bitOf(key)
		if seen&bit != 0 {
			return seen, d.fail("duplicate field")
		}
		seen |= bit
		if bit == 0 {
			err = d.skip()
		} else {
			err = set(bit)
		}
		if err != nil {
			return seen, err
		}
		if more, err := d.next('}'); err != nil || !more {
			return seen, err
		}
	}
}

// key reads an object member name and the colon after it.
func (d *decoder) key() (string, error) {
	if d.i >= len(d.s) || d.s[d.i] != '"' {
		return "", d.syntax("'\"' starting a field name")
	}
	k, err := d.str()
	if err != nil {
		return "", err
	}
	d.ws()
	if d.i >= len(d.s) || d.s[d.i] != ':' {
		return "", d.syntax("':' after a field name")
	}
	d.i++
	d.ws()
	return k, nil
}

func (d *decoder) stringValue() (string, error) {
	if d.i >= len(d.s) || d.s[d.i] != '"' {
		return "", d.wrongType("string")
	}
	return d.str()
}

func (d *decoder) money() (Cents, error) {
	if d.i >= len(d.s) || !isNumberStart(d.s[d.i]) {
		return 0, d.wrongType("number")
	}
	start := d.i
	text, err := d.number()
	if err != nil {
		return 0, err
	}
	c, reason := parseMoney(text)
	if reason != "" {
		d.i = start
		return 0, d.fail(reason + ", got " + clip(text))
	}
	return c, nil
}

func (d *decoder) integer() (int, error) {
	if d.i >= len(d.s) || !isNumberStart(d.s[d.i]) {
		return 0, d.wrongType("number")
	}
	start := d.i
	text, err := d.number()
	if err != nil {
		return 0, err
	}
	for k := 0; k < len(text); k++ {
		if c := text[k]; c == '.' || c == 'e' || c == 'E' {
			d.i = start
			return 0, d.fail("want an integer, got " + clip(text))
		}
	}
	n, err := strconv.Atoi(text)
	if err != nil {
		d.i = start
		return 0, d.fail("integer out of range, got " + clip(text))
	}
	return n, nil
}

func (d *decoder) time() (time.Time, error) {
	if d.i >= len(d.s) || d.s[d.i] != '"' {
		return time.Time{}, d.wrongType("string")
	}
	start := d.i
	s, err := d.str()
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		d.i = start
		return time.Time{}, d.fail("want an RFC 3339 time, got " + strconv.Quote(clip(s)))
	}
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		d.i = start
		return time.Time{}, d.fail("time " + strconv.Quote(clip(s)) + " falls outside years 0000 to 9999 in UTC")
	}
	return t, nil
}

// skip steps over one JSON value of any kind, checking its syntax.
func (d *decoder) skip() error {
	if d.i >= len(d.s) {
		return d.syntax("a JSON value")
	}
	switch c := d.s[d.i]; c {
	case '"':
		_, err := d.str()
		return err
	case '{':
		if err := d.enter(); err != nil {
			return err
		}
		d.ws()
		if d.i < len(d.s) && d.s[d.i] == '}' {
			d.i++
			d.depth--
			return nil
		}
		for {
			d.ws()
			if _, err := d.key(); err != nil {
				return err
			}
			if err := d.skip(); err != nil {
				return err
			}
			if more, err := d.next('}'); err != nil {
				return err
			} else if !more {
				d.depth--
				return nil
			}
		}
	case '[':
		if err := d.enter(); err != nil {
			return err
		}
		d.ws()
		if d.i < len(d.s) && d.s[d.i] == ']' {
			d.i++
			d.depth--
			return nil
		}
		for {
			d.ws()
			if err := d.skip(); err != nil {
				return err
			}
			if more, err := d.next(']'); err != nil {
				return err
			} else if !more {
				d.depth--
				return nil
			}
		}
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	default:
		if isNumberStart(c) {
			_, err := d.number()
			return err
		}
		return d.syntax("a JSON value")
	}
}

func (d *decoder) literal(lit string) error {
	if len(d.s)-d.i >= len(lit) && d.s[d.i:d.i+len(lit)] == lit {
		d.i += len(lit)
		return nil
	}
	for k := 0; k < len(lit) && d.i < len(d.s) && d.s[d.i] == lit[k]; k++ {
		d.i++ // point the error at the first wrong byte
	}
	return d.syntax(strconv.Quote(lit))
}

// number scans a JSON number and returns its text.
func (d *decoder) number() (string, error) {
	s, i, start := d.s, d.i, d.i
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		for i++; i < len(s) && isDigit(s[i]); i++ {
		}
	default:
		d.i = i
		return "", d.syntax("a digit")
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || !isDigit(s[i]) {
			d.i = i
			return "", d.syntax("a digit after the decimal point")
		}
		for i++; i < len(s) && isDigit(s[i]); i++ {
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			d.i = i
			return "", d.syntax("a digit in the exponent")
		}
		for i++; i < len(s) && isDigit(s[i]); i++ {
		}
	}
	d.i = i
	return s[start:i], nil
}

// str reads the string starting at d.i ('"'). Without escapes, which is
// every string foodpipe writes, the result is a substring of d.s: no copy.
func (d *decoder) str() (string, error) {
	s := d.s
	for i := d.i + 1; i < len(s); {
		// Plain ASCII (no quote, backslash or control character) in one
		// table look-up per byte: the sink's profile showed this loop.
		for i < len(s) && plainASCII[s[i]] {
			i++
		}
		if i == len(s) {
			break
		}
		c := s[i]
		switch {
		case c == '"':
			v := s[d.i+1 : i]
			d.i = i + 1
			return v, nil
		case c == '\\':
			return d.strEscaped()
		case c < 0x20:
			d.i = i
			return "", d.fail("control character " + byteName(c) + " in a string at offset " +
				strconv.Itoa(i) + ", must be escaped")
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				d.i = i
				return "", d.fail("invalid UTF-8 at offset " + strconv.Itoa(i))
			}
			i += size
		}
	}
	d.i = len(s)
	return "", d.syntax("'\"' closing the string")
}

// strEscaped is the slow path of str for strings holding escapes.
func (d *decoder) strEscaped() (string, error) {
	s := d.s
	buf := make([]byte, 0, 64)
	for i := d.i + 1; i < len(s); {
		c := s[i]
		switch {
		case c == '"':
			d.i = i + 1
			return string(buf), nil
		case c == '\\':
			if i+1 >= len(s) {
				d.i = len(s)
				return "", d.syntax("an escape")
			}
			switch e := s[i+1]; e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := hex4(s, i+2)
				if !ok {
					d.i = i
					return "", d.fail("invalid \\u escape at offset " + strconv.Itoa(i))
				}
				n := 6
				if utf16.IsSurrogate(r) {
					r2, ok := rune(0), false
					if r < 0xDC00 && i+12 <= len(s) && s[i+6] == '\\' && s[i+7] == 'u' {
						r2, ok = hex4(s, i+8)
					}
					if !ok || r2 < 0xDC00 || r2 > 0xDFFF {
						d.i = i
						return "", d.fail("lone UTF-16 surrogate " + s[i:i+6] + " at offset " + strconv.Itoa(i) +
							" (not a character; PostgreSQL jsonb rejects it)")
					}
					r = utf16.DecodeRune(r, r2)
					n = 12
				}
				buf = utf8.AppendRune(buf, r)
				i += n
				continue
			default:
				d.i = i
				return "", d.fail("invalid escape " + strconv.Quote(s[i:i+2]) + " at offset " + strconv.Itoa(i))
			}
			i += 2
		case c < 0x20:
			d.i = i
			return "", d.fail("control character " + byteName(c) + " in a string at offset " +
				strconv.Itoa(i) + ", must be escaped")
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				d.i = i
				return "", d.fail("invalid UTF-8 at offset " + strconv.Itoa(i))
			}
			buf = append(buf, s[i:i+size]...)
			i += size
		}
	}
	d.i = len(s)
	return "", d.syntax("'\"' closing the string")
}

func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// next reads what follows a member or element: ',' (more follow) or the
// closing byte (the object or array ends), after optional whitespace.
func (d *decoder) next(close byte) (more bool, err error) {
	d.ws()
	if d.i < len(d.s) {
		switch d.s[d.i] {
		case ',':
			d.i++
			return true, nil
		case close:
			d.i++
			return false, nil
		}
	}
	return false, d.syntax("',' or '" + string(close) + "'")
}

func (d *decoder) ws() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func isNumberStart(c byte) bool { return c == '-' || isDigit(c) }

// kind names the JSON type a value starting with c has, or "" when c
// cannot start a value.
func kind(c byte) string {
	switch c {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return "number"
	}
	return ""
}

// wrongType reports a value of the wrong JSON type, after checking that it
// is a well-formed value at all (a syntax error is the truer report).
func (d *decoder) wrongType(want string) error {
	if d.i >= len(d.s) {
		return d.syntax("a JSON value")
	}
	got := kind(d.s[d.i])
	if got == "" {
		return d.syntax("a JSON value")
	}
	start := d.i
	if err := d.skip(); err != nil {
		return err
	}
	d.i = start
	return d.fail("want " + want + ", got " + got)
}

func (d *decoder) path() string {
	if d.item < 0 {
		return pathName(d.top)
	}
	p := pathName(d.top) + "[" + strconv.Itoa(d.item) + "]"
	if d.sub != "" {
		p += "." + pathName(d.sub)
	}
	return p
}

// pathName makes a field name, which for an unknown field is whatever the
// record says, safe for a one-line message: short, and quoted when it holds
// anything but printable characters.
func pathName(name string) string {
	name = clip(name)
	for _, r := range name {
		if !unicode.IsPrint(r) || r == '"' || r == '\\' {
			return strconv.Quote(name)
		}
	}
	return name
}

func (d *decoder) fail(reason string) error {
	return &DecodeError{Field: d.path(), Offset: d.i, Reason: reason}
}

func (d *decoder) syntax(want string) error {
	got := "end of input"
	if d.i < len(d.s) {
		got = byteName(d.s[d.i])
	}
	return d.fail("syntax error at offset " + strconv.Itoa(d.i) + ": unexpected " + got + ", want " + want)
}

func byteName(c byte) string {
	if 0x20 < c && c < 0x7F {
		return strconv.QuoteRune(rune(c))
	}
	return "byte 0x" + string([]byte{hexDigits[c>>4], hexDigits[c&0xF]})
}
