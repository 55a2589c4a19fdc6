package order

import (
	"bytes"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"
)

// Order statuses, the only values Validate accepts for Order.Status.
const (
	StatusPending    = "pending"
	StatusProcessing = "processing"
	StatusCompleted  = "completed"
	StatusFailed     = "failed"
)

// Column limits of the orders table, in characters (PostgreSQL VARCHAR(n)
// counts characters, not bytes), and the NUMERIC(10,2) bound of total_amount.
const (
	MaxIDLen     = 50                    // order_id, customer_id
	MaxNameLen   = 100                   // customer_name
	MaxEmailLen  = 100                   // customer_email
	MaxStatusLen = 20                    // status
	MinItems     = 1                     // items per order
	MaxItems     = 100                   // items per order
	MinQuantity  = 1                     // per item
	MaxQuantity  = 1000                  // per item
	MaxTotal     = Cents(10_000_000_000) // exclusive: NUMERIC(10,2) holds at most 99,999,999.99
)

// Item is one line of an order.
type Item struct {
	ItemID   string
	Name     string
	Quantity int
	Price    Cents
	Subtotal Cents // Price × Quantity, checked by Validate
}

// Order is a food order, wire format v1.
//
// Orders are meant to be reused across records (Decode and Generator.Next
// keep the capacity of Items), so treat one as valid only until it is filled
// again.
type Order struct {
	OrderID       string
	CustomerID    string
	CustomerName  string
	CustomerEmail string
	Items         []Item
	TotalAmount   Cents // Σ Items[i].Subtotal, checked by Validate
	Status        string
	CreatedAt     time.Time // UTC

	// RawItems is the "items" array exactly as Decode received it, so the
	// consumer can store it as jsonb without re-encoding (the SPEC keeps the
	// item objects "exactly as received", unknown fields included). It aliases
	// the slice given to Decode: keep that buffer unchanged while RawItems is
	// in use. Its capacity is clipped, so appending to it never writes into
	// the input. Generator.Next sets it to nil and AppendJSON ignores it
	// (it encodes Items); use AppendItemsJSON for the jsonb of such orders.
	RawItems []byte
}

// WireHeaders are the Kafka headers of every order record (wire format
// v1).
var WireHeaders = map[string]string{
	"content-type": "application/json",
	"schema":       "food-order/v1",
}

// Error classes for the dead-letter header foodpipe-error-class: why a
// record was not stored.
const (
	ClassDecode   = "decode"   // not a wire-format-v1 order
	ClassValidate = "validate" // an order that breaks a rule of the contract
	ClassStore    = "store"    // an order PostgreSQL refused for its content
)

// Classes are the dead-letter classes, in the order the pipeline meets them.
var Classes = []string{ClassDecode, ClassValidate, ClassStore}

// DecodeError reports bytes that are not a wire-format-v1 order. The
// consumer dead-letters them with class "decode".
type DecodeError struct {
	// Field is the JSON path of the offending value ("items[1].price"), or
	// of the object a field is missing from; empty for the document itself.
	Field string
	// Offset is the byte offset in the input where the problem was found.
	Offset int
	// Reason says what is wrong, in one line.
	Reason string
}

// Error formats the error as one line suitable for a log or a DLQ header.
func (e *DecodeError) Error() string {
	if e.Field == "" {
		return "decode order: " + e.Reason
	}
	return "decode order: " + e.Field + ": " + e.Reason
}

// ValidationError reports an order that decoded but breaks a rule of the
// SPEC. The consumer dead-letters it with class "validate".
type ValidationError struct {
	// Field is the path of the offending field ("items[2].subtotal").
	Field string
	// Reason says what is wrong and what was expected, in one line.
	Reason string
}

// Error formats the error as one line suitable for a log or a DLQ header.
func (e *ValidationError) Error() string {
	return "validate order: " + e.Field + ": " + e.Reason
}

// ErrorClass returns the dead-letter class of an error from this package:
// ClassDecode, ClassValidate, or "" for any other error.
func ErrorClass(err error) string {
	var de *DecodeError
	if errors.As(err, &de) {
		return ClassDecode
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		return ClassValidate
	}
	return ""
}

// DecodeAndValidate is the consumer's whole check of one record: Decode,
// then Validate. Its error has a class (ErrorClass) and one-line message fit
// for the dead-letter headers.
func DecodeAndValidate(data []byte, o *Order) error {
	if err := Decode(data, o); err != nil {
		return err
	}
	return o.Validate()
}

// Validate checks every rule of the SPEC's "valid" list that Decode has not
// already enforced, plus what PostgreSQL would refuse for its content, so
// that a valid order is one the store can always insert. It reports the
// first broken rule, in wire field order.
//
// Beyond the SPEC: every text field must be non-empty (an empty id, name or
// status is a producer bug, not data), valid UTF-8 and free of NUL
// characters (PostgreSQL text and jsonb cannot hold U+0000), including
// anywhere in RawItems; created_at must not be the zero time and must lie in
// years 0000–9999 so that it can be written back as RFC 3339. order_id is not
// required to start "ORD-": that is how foodpipe's generator names orders,
// not something other producers promise.
func (o *Order) Validate() error {
	if err := checkText("order_id", o.OrderID, MaxIDLen); err != nil {
		return err
	}
	if err := checkText("customer_id", o.CustomerID, MaxIDLen); err != nil {
		return err
	}
	if err := checkText("customer_name", o.CustomerName, MaxNameLen); err != nil {
		return err
	}
	if err := checkText("customer_email", o.CustomerEmail, MaxEmailLen); err != nil {
		return err
	}
	if !containsByte(o.CustomerEmail, '@') {
		return invalid("customer_email", strconv.Quote(clip(o.CustomerEmail))+" has no '@'")
	}
	if n := len(o.Items); n < MinItems || n > MaxItems {
		return invalid("items", strconv.Itoa(n)+" items, want "+strconv.Itoa(MinItems)+" to "+strconv.Itoa(MaxItems))
	}
	var sum Cents
	sumOK := true
	for i := range o.Items {
		it := &o.Items[i]
		if err := checkItemText(i, "item_id", it.ItemID); err != nil {
			return err
		}
		if err := checkItemText(i, "name", it.Name); err != nil {
			return err
		}
		if it.Quantity < MinQuantity || it.Quantity > MaxQuantity {
			return invalid(itemPath(i, "quantity"), strconv.Itoa(it.Quantity)+" out of range, want "+
				strconv.Itoa(MinQuantity)+" to "+strconv.Itoa(MaxQuantity))
		}
		if it.Price <= 0 {
			return invalid(itemPath(i, "price"), it.Price.String()+" must be greater than 0")
		}
		if want, ok := mulCents(it.Price, it.Quantity); !ok || it.Subtotal != want {
			return invalid(itemPath(i, "subtotal"), it.Subtotal.String()+" != price "+it.Price.String()+
				" × quantity "+strconv.Itoa(it.Quantity))
		}
		// Subtotals are positive here, so the sum can only overflow upwards.
		if sum > maxCents-it.Subtotal {
			sumOK = false
		}
		sum += it.Subtotal
	}
	if hasEscapedNUL(o.RawItems) {
		return invalid("items", `contain a NUL character (\u0000), which PostgreSQL jsonb cannot store`)
	}
	if !sumOK || o.TotalAmount != sum {
		want := "overflows"
		if sumOK {
			want = sum.String()
		}
		return invalid("total_amount", o.TotalAmount.String()+" != sum of subtotals "+want)
	}
	if o.TotalAmount <= 0 || o.TotalAmount >= MaxTotal {
		return invalid("total_amount", o.TotalAmount.String()+" out of range, want more than 0.00 and less than "+MaxTotal.String())
	}
	if err := checkText("status", o.Status, MaxStatusLen); err != nil {
		return err
	}
	switch o.Status {
	case StatusPending, StatusProcessing, StatusCompleted, StatusFailed:
	default:
		return invalid("status", strconv.Quote(o.Status)+" is not one of pending, processing, completed, failed")
	}
	// The field is there (Decode requires it), but 0001-01-01T00:00:00Z is
	// what a Go producer that never set the time sends.
	if o.CreatedAt.IsZero() {
		return invalid("created_at", "0001-01-01T00:00:00Z, Go's zero time: the producer never set it")
	}
	if y := o.CreatedAt.UTC().Year(); y < 0 || y > 9999 {
		return invalid("created_at", "year "+strconv.Itoa(y)+" in UTC is outside 0000 to 9999, not writable as RFC 3339")
	}
	return nil
}

const maxCents = Cents(1<<63 - 1)

func invalid(field, reason string) *ValidationError {
	return &ValidationError{Field: field, Reason: reason}
}

func itemPath(i int, field string) string {
	return "items[" + strconv.Itoa(i) + "]." + field
}

// checkText enforces non-empty, valid UTF-8, no NUL and at most max
// characters in one pass; it allocates only when it fails.
func checkText(field, s string, max int) *ValidationError {
	if s == "" {
		return invalid(field, "empty")
	}
	n, reason := scanText(s)
	if reason != "" {
		return invalid(field, reason)
	}
	if max > 0 && n > max {
		return invalid(field, strconv.Itoa(n)+" characters, limit "+strconv.Itoa(max))
	}
	return nil
}

func checkItemText(i int, field, s string) *ValidationError {
	if s == "" {
		return invalid(itemPath(i, field), "empty")
	}
	if _, reason := scanText(s); reason != "" {
		return invalid(itemPath(i, field), reason)
	}
	return nil
}

// scanText counts the characters of s and reports what PostgreSQL would
// refuse in it.
func scanText(s string) (runes int, reason string) {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c == 0 {
				return 0, `contains a NUL character (\u0000), which PostgreSQL text cannot store`
			}
			i++
			runes++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return 0, "not valid UTF-8 at byte " + strconv.Itoa(i)
		}
		i += size
		runes++
	}
	return runes, ""
}

func containsByte(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}

var nulEscape = []byte(`\u0000`)

// hasEscapedNUL reports whether the JSON text b contains the escape \u0000.
// Decode has already checked b, so every backslash is inside a string and
// an odd run of backslashes before "u0000" means the last one starts the
// escape ("\\u0000" is a backslash followed by the text u0000).
func hasEscapedNUL(b []byte) bool {
	for {
		j := bytes.Index(b, nulEscape)
		if j < 0 {
			return false
		}
		k := j
		for k > 0 && b[k-1] == '\\' {
			k--
		}
		if (j-k)%2 == 0 {
			return true
		}
		b = b[j+len(nulEscape):]
	}
}
