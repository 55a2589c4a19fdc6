package order

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzDecode holds Decode to encoding/json: it never panics; whatever it
// accepts, encoding/json accepts as an object with the same field values
// and the same items bytes; whatever encoding/json rejects, it rejects;
// and what it accepts survives AppendJSON and a second Decode.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(ordersDir, "*.json"))
	bad, _ := filepath.Glob(filepath.Join(ordersDir, "bad", "*.json"))
	for _, name := range append(files, bad...) {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		exampleJSON, "{}", "[]", `{"items":[{}]}`, `{"a":{"b":[1,{"c":null}]}}`, `"\u00e9"`,
		`{"customer_name":"\ud83c\udf54\u0041\\"}`, `{"total_amount":-0.5}`, `{"quantity":1e3}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var o Order
		err := Decode(data, &o)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode error %v is a %T, want *DecodeError", err, err)
			}
			if strings.ContainsAny(err.Error(), "\r\n") || !utf8.ValidString(err.Error()) {
				t.Fatalf("Decode error %q is not one line of UTF-8", err)
			}
			_ = o.Validate() // whatever Decode left behind must not make Validate panic
			return
		}
		if !json.Valid(data) {
			t.Fatalf("Decode accepted what encoding/json rejects: %q", data)
		}
		checkAgainstEncodingJSON(t, data, &o)
		_ = o.Validate()

		enc := AppendJSON(nil, &o)
		if !json.Valid(enc) {
			t.Fatalf("AppendJSON wrote invalid JSON %q", enc)
		}
		var back Order
		if err := Decode(enc, &back); err != nil {
			t.Fatalf("Decode(AppendJSON(o)): %v\ninput %q\nencoded %q", err, data, enc)
		}
		want := o
		want.CreatedAt = o.CreatedAt.Add(-time.Duration(o.CreatedAt.Nanosecond() % 1000)) // written in µs
		if d := orderDiff(&back, &want); d != "" {
			t.Fatalf("round trip differs:%s\ninput %q\nencoded %q", d, data, enc)
		}
	})
}

// checkAgainstEncodingJSON decodes data with encoding/json, field by field,
// and compares with o.
func checkAgainstEncodingJSON(t *testing.T, data []byte, o *Order) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("Decode accepted %q, encoding/json as an object: %v", data, err)
	}
	str := func(raw json.RawMessage, got, name string) {
		var want string
		if err := json.Unmarshal(raw, &want); err != nil || got != want {
			t.Fatalf("%s: Decode %q, encoding/json %q (%v) in %q", name, got, want, err, data)
		}
	}
	money := func(raw json.RawMessage, got Cents, name string) {
		want, err := ParseCents(string(raw))
		if err != nil || got != want {
			t.Fatalf("%s: Decode %v, text %s (%v) in %q", name, got, raw, err, data)
		}
	}
	str(m["order_id"], o.OrderID, "order_id")
	str(m["customer_id"], o.CustomerID, "customer_id")
	str(m["customer_name"], o.CustomerName, "customer_name")
	str(m["customer_email"], o.CustomerEmail, "customer_email")
	str(m["status"], o.Status, "status")
	money(m["total_amount"], o.TotalAmount, "total_amount")
	var created string
	if err := json.Unmarshal(m["created_at"], &created); err != nil {
		t.Fatal(err)
	}
	if want, err := time.Parse(time.RFC3339Nano, created); err != nil || !want.Equal(o.CreatedAt) {
		t.Fatalf("created_at: Decode %v, time.Parse %v (%v)", o.CreatedAt, want, err)
	}
	if !bytes.Equal(m["items"], o.RawItems) {
		t.Fatalf("RawItems %q, encoding/json %q", o.RawItems, m["items"])
	}
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(m["items"], &items); err != nil || len(items) != len(o.Items) {
		t.Fatalf("items: Decode %d, encoding/json %d (%v)", len(o.Items), len(items), err)
	}
	for i, it := range items {
		str(it["item_id"], o.Items[i].ItemID, "item_id")
		str(it["name"], o.Items[i].Name, "name")
		money(it["price"], o.Items[i].Price, "price")
		money(it["subtotal"], o.Items[i].Subtotal, "subtotal")
		var q int
		if err := json.Unmarshal(it["quantity"], &q); err != nil || q != o.Items[i].Quantity {
			t.Fatalf("quantity: Decode %d, encoding/json %d (%v)", o.Items[i].Quantity, q, err)
		}
	}
}

// FuzzAppendJSON checks that any order, whatever its strings hold, encodes
// to valid JSON that decodes back to it (invalid UTF-8 read as U+FFFD).
func FuzzAppendJSON(f *testing.F) {
	f.Add("ORD-1", "Jane \"Smith\"\n", "\xff", int64(1099), 2, int64(1764250062123456789))
	f.Add("", "\x00", "é🍔\u2028", int64(-1<<63), -7, int64(0))
	f.Fuzz(func(t *testing.T, id, name, item string, price int64, qty int, nanos int64) {
		o := Order{
			OrderID: id, CustomerID: id, CustomerName: name, CustomerEmail: name,
			Items:       []Item{{ItemID: item, Name: name, Quantity: qty, Price: Cents(price), Subtotal: Cents(price)}},
			TotalAmount: Cents(price), Status: item,
			CreatedAt: time.Unix(0, nanos).UTC(),
		}
		enc := AppendJSON(nil, &o)
		if !json.Valid(enc) {
			t.Fatalf("AppendJSON wrote invalid JSON %q", enc)
		}
		var back Order
		if err := Decode(enc, &back); err != nil {
			t.Fatalf("Decode(%q): %v", enc, err)
		}
		want := o
		fix := perByteReplacement
		want.OrderID, want.CustomerID, want.CustomerName, want.CustomerEmail, want.Status =
			fix(id), fix(id), fix(name), fix(name), fix(item)
		want.Items = []Item{{ItemID: fix(item), Name: fix(name), Quantity: qty, Price: Cents(price), Subtotal: Cents(price)}}
		want.CreatedAt = o.CreatedAt.Add(-time.Duration(o.CreatedAt.Nanosecond() % 1000))
		if d := orderDiff(&back, &want); d != "" {
			t.Fatalf("round trip differs:%s\nencoded %q", d, enc)
		}
	})
}

// perByteReplacement replaces each byte of invalid UTF-8 with U+FFFD, as
// AppendJSON and encoding/json do (strings.ToValidUTF8 replaces whole runs).
func perByteReplacement(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString("\uFFFD")
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// FuzzParseCents holds ParseCents to exact decimal arithmetic (math/big):
// what it accepts is the exact value of the text in cents, and it accepts
// every plain JSON number with at most 2 decimals inside the range.
func FuzzParseCents(f *testing.F) {
	for _, s := range []string{"10.99", "0", "-0.5", "1e2", "10.999", "01", "92233720368547758.07", "-92233720368547758.08"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCents(s)
		plain := isPlainMoney(s)
		var exact big.Rat
		if plain {
			if _, ok := exact.SetString(s); !ok {
				t.Fatalf("big.Rat rejects %q", s)
			}
			exact.Mul(&exact, big.NewRat(100, 1))
		}
		inRange := plain && exact.IsInt() && exact.Num().IsInt64()
		switch {
		case err == nil && !inRange:
			t.Fatalf("ParseCents(%q) = %d, want an error", s, int64(c))
		case err != nil && inRange:
			t.Fatalf("ParseCents(%q): %v, want %s", s, err, exact.Num())
		case err == nil && exact.Num().Int64() != int64(c):
			t.Fatalf("ParseCents(%q) = %d, want %s", s, int64(c), exact.Num())
		case err == nil && c != 0 && c.String() != normalMoney(s): // "-0.0" is 0.00
			t.Fatalf("ParseCents(%q).String() = %q", s, c.String())
		}
	})
}

// isPlainMoney reports whether s is a JSON number without exponent and with
// at most two decimals, by a route independent of parseMoney.
func isPlainMoney(s string) bool {
	if !json.Valid([]byte(s)) || strings.ContainsAny(s, "eE") || strings.TrimLeft(s, "-0123456789.") != "" || s == "" || s[0] == ' ' {
		return false
	}
	if _, frac, ok := strings.Cut(s, "."); ok && len(frac) > 2 {
		return false
	}
	var v any
	return json.Unmarshal([]byte(s), &v) == nil
}

// normalMoney writes a plain money text the way String does.
func normalMoney(s string) string {
	intPart, frac, _ := strings.Cut(s, ".")
	return intPart + "." + (frac + "00")[:2]
}
