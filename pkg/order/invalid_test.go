package order

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// badRecord is a record the consumer must dead-letter.
type badRecord struct {
	name  string // the case; the file is bad/<class>-<name>.json
	class string // ClassDecode or ClassValidate: the foodpipe-error-class header
	data  []byte
	want  string // substring of the error message
}

// replace returns exampleJSON with the first old replaced by new, failing
// loudly if old is not there (a typo would otherwise test the valid order).
func replace(old, new string) []byte {
	if !strings.Contains(exampleJSON, old) {
		panic("replace: " + old + " not in exampleJSON")
	}
	return []byte(strings.Replace(exampleJSON, old, new, 1))
}

// with returns the example order, changed by f, as AppendJSON writes it:
// well-formed records for the rules Validate enforces.
func with(f func(o *Order)) []byte {
	o := exampleOrder()
	f(&o)
	return AppendJSON(nil, &o)
}

// repeatItems gives o n copies of its first item, keeping the total right.
func repeatItems(o *Order, n int) {
	it := o.Items[0]
	o.Items = o.Items[:0]
	o.TotalAmount = 0
	for range n {
		o.Items = append(o.Items, it)
		o.TotalAmount += it.Subtotal
	}
}

// priced gives o one item of the given price and quantity, subtotal and
// total consistent with them.
func priced(o *Order, price Cents, qty int) {
	o.Items[0].Price, o.Items[0].Quantity = price, qty
	o.Items[0].Subtotal = price * Cents(qty)
	o.TotalAmount = o.Items[0].Subtotal
}

// badRecords lists every way the SPEC's "valid" rules can be broken, plus
// the codec's own strictness. Each is also a file in testdata/orders/bad/
// (run the tests with -update to rewrite them): records the consumer's
// poison-record test produces, expecting each in the dead-letter topic with
// the class its file name starts with.
func badRecords() []badRecord {
	return slices.Concat(notAnObject(), badText(), badFields(), brokenRules())
}

// notAnObject: records that are not a JSON object at all.
func notAnObject() []badRecord {
	const d, v = ClassDecode, ClassValidate
	deep := `"x":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + `,`
	return []badRecord{
		// Not a JSON object.
		{"empty", d, []byte{}, "empty input"},
		{"whitespace-only", d, []byte(" \n\t "), "only whitespace"},
		{"null", d, []byte("null"), "want object, got null"},
		{"array", d, []byte("[" + exampleJSON + "]"), "want object, got array"},
		{"string", d, []byte(`"ORD-1"`), "want object, got string"},
		{"number", d, []byte("42"), "want object, got number"},
		{"truncated", d, []byte(exampleJSON[:len(exampleJSON)/2]), "end of input"},
		{"truncated-after-object-start", d, []byte("{"), "end of input"},
		{"trailing-garbage", d, []byte(exampleJSON + "x"), "trailing data"},
		{"two-objects", d, []byte(exampleJSON + "\n" + exampleJSON), "trailing data"},
		{"byte-order-mark", d, []byte("\xef\xbb\xbf" + exampleJSON), "unexpected byte 0xef"},
		{"single-quotes", d, []byte(strings.ReplaceAll(exampleJSON, `"`, `'`)), "syntax error"},
		{"trailing-comma", d, replace(`"created_at":"2026-11-27T13:27:42.123456Z"`, `"created_at":"2026-11-27T13:27:42.123456Z",`), "syntax error"},
		{"trailing-comma-items", d, replace(`21.98}]`, `21.98},]`), "syntax error"},
		{"nesting-too-deep", d, replace(`"status"`, deep+`"status"`), "nesting deeper than 1000"},
	}
}

// badText: bytes that are not UTF-8, or strings RFC 8259 forbids.
func badText() []badRecord {
	const d, v = ClassDecode, ClassValidate
	return []badRecord{
		// Not UTF-8, or strings RFC 8259 forbids.
		{"non-utf8-name", d, replace("Jane Smith", "Jane \xffSmith"), "invalid UTF-8"},
		{"non-utf8-latin1", d, replace("Jane Smith", "Jos\xe9 Smith"), "invalid UTF-8"},
		{"non-utf8-unknown-field", d, replace(`"status"`, "\"note\":\"\xc3\x28\",\"status\""), "invalid UTF-8"},
		{"utf8-encoded-surrogate", d, replace("Jane Smith", "Jane \xed\xa0\x80"), "invalid UTF-8"},
		{"lone-surrogate-escape", d, replace("Jane Smith", `Jane \ud83c`), "lone UTF-16 surrogate"},
		{"invalid-escape", d, replace("Jane Smith", `Jane \x41`), "invalid escape"},
		{"raw-control-character", d, replace("Jane Smith", "Jane\tSmith"), "control character"},
		{"unterminated-string", d, []byte(`{"order_id":"ORD-1`), "end of input"},
		{"truncated-unicode-escape", d, replace("Jane Smith", `Jane \u00e`), `invalid \u escape`},
		{"reversed-surrogate-pair", d, replace("Jane Smith", `Jane \udf54\ud83c`), "lone UTF-16 surrogate"},
		{"missing-colon", d, replace(`"status":`, `"status" `), "want ':' after a field name"},
		{"unquoted-field-name", d, replace(`"status":`, `status:`), `want '"' starting a field name`},
		{"literal-typo-in-unknown-field", d, replace(`"status"`, `"gift":tru,"status"`), `want "true"`},
		{"number-without-fraction-digits", d, replace(`"status"`, `"tip":1.,"status"`), "want a digit after the decimal point"},
		{"number-without-exponent-digits", d, replace(`"status"`, `"tip":1e+,"status"`), "want a digit in the exponent"},
		{"number-plus-sign", d, replace(`"status"`, `"tip":+1,"status"`), "want a JSON value"},
	}
}

// badFields: a field missing, duplicated or of the wrong JSON type.
func badFields() []badRecord {
	const d, v = ClassDecode, ClassValidate
	return []badRecord{
		// A field missing, duplicated or of the wrong JSON type.
		{"missing-order_id", d, replace(`"order_id":"ORD-20261127-7ZQ3K9M2X4V8N6PD-42",`, ``), `missing field "order_id"`},
		{"missing-customer_id", d, replace(`"customer_id":"CUST-00042",`, ``), `missing field "customer_id"`},
		{"missing-customer_name", d, replace(`"customer_name":"Jane Smith",`, ``), `missing field "customer_name"`},
		{"missing-customer_email", d, replace(`"customer_email":"jane.smith.42@example.com",`, ``), `missing field "customer_email"`},
		{"missing-items", d, replace(`"items":`+exampleItemsJSON+`,`, ``), `missing field "items"`},
		{"missing-total_amount", d, replace(`"total_amount":21.98,`, ``), `missing field "total_amount"`},
		{"missing-status", d, replace(`"status":"pending",`, ``), `missing field "status"`},
		{"missing-created_at", d, replace(`,"created_at":"2026-11-27T13:27:42.123456Z"`, ``), `missing field "created_at"`},
		{"empty-object", d, []byte("{}"), `missing field "order_id"`},
		{"missing-item-item_id", d, replace(`"item_id":"ITEM-003",`, ``), `items[0]: missing field "item_id"`},
		{"missing-item-name", d, replace(`"name":"Bacon Burger",`, ``), `items[0]: missing field "name"`},
		{"missing-item-quantity", d, replace(`"quantity":2,`, ``), `items[0]: missing field "quantity"`},
		{"missing-item-price", d, replace(`"price":10.99,`, ``), `items[0]: missing field "price"`},
		{"missing-item-subtotal", d, replace(`,"subtotal":21.98`, ``), `items[0]: missing field "subtotal"`},
		{"duplicate-total_amount", d, replace(`"total_amount":21.98,`, `"total_amount":21.98,"total_amount":0.01,`), "total_amount: duplicate field"},
		{"duplicate-item-price", d, replace(`"price":10.99,`, `"price":10.99,"price":0.01,`), "items[0].price: duplicate field"},
		{"order_id-number", d, replace(`"ORD-20261127-7ZQ3K9M2X4V8N6PD-42"`, `42`), "order_id: want string, got number"},
		{"customer_id-null", d, replace(`"CUST-00042"`, `null`), "customer_id: want string, got null"},
		{"customer_name-object", d, replace(`"Jane Smith"`, `{"first":"Jane"}`), "customer_name: want string, got object"},
		{"customer_email-array", d, replace(`"jane.smith.42@example.com"`, `["jane.smith.42@example.com"]`), "customer_email: want string, got array"},
		{"items-object", d, replace(exampleItemsJSON, exampleItemsJSON[1:len(exampleItemsJSON)-1]), "items: want array, got object"},
		{"items-null", d, replace(exampleItemsJSON, `null`), "items: want array, got null"},
		{"item-string", d, replace(exampleItemsJSON, `["ITEM-003"]`), "items[0]: want object, got string"},
		{"item_id-number", d, replace(`"ITEM-003"`, `3`), "items[0].item_id: want string, got number"},
		{"item-name-bool", d, replace(`"Bacon Burger"`, `true`), "items[0].name: want string, got boolean"},
		{"quantity-string", d, replace(`"quantity":2`, `"quantity":"2"`), "items[0].quantity: want number, got string"},
		{"quantity-fraction", d, replace(`"quantity":2`, `"quantity":2.5`), "items[0].quantity: want an integer, got 2.5"},
		{"quantity-integral-fraction", d, replace(`"quantity":2`, `"quantity":2.0`), "want an integer, got 2.0"},
		{"quantity-exponent", d, replace(`"quantity":2`, `"quantity":2e0`), "want an integer, got 2e0"},
		{"quantity-overflow", d, replace(`"quantity":2`, `"quantity":99999999999999999999999`), "integer out of range"},
		{"quantity-leading-zero", d, replace(`"quantity":2`, `"quantity":02`), "syntax error"},
		{"price-string", d, replace(`"price":10.99`, `"price":"10.99"`), "items[0].price: want number, got string"},
		{"price-three-decimals", d, replace(`"price":10.99`, `"price":10.999`), "items[0].price: want money with at most 2 decimals, got 10.999"},
		{"price-trailing-zero-decimal", d, replace(`"price":10.99`, `"price":10.990`), "at most 2 decimals"},
		{"price-exponent", d, replace(`"price":10.99`, `"price":1.099e1`), "not an exponent"},
		{"price-nan", d, replace(`"price":10.99`, `"price":NaN`), "syntax error"},
		{"subtotal-bool", d, replace(`"subtotal":21.98`, `"subtotal":false`), "items[0].subtotal: want number, got boolean"},
		{"total_amount-string", d, replace(`"total_amount":21.98`, `"total_amount":"21.98"`), "total_amount: want number, got string"},
		{"total_amount-three-decimals", d, replace(`"total_amount":21.98`, `"total_amount":21.985`), "total_amount: want money with at most 2 decimals"},
		{"price-hundred-digits", d, replace(`"price":10.99`, `"price":`+strings.Repeat("9", 100)), "money out of range, got 9999999999999999999999999999999999999999…"},
		{"total_amount-overflow", d, replace(`"total_amount":21.98`, `"total_amount":123456789012345678901234567890`), "money out of range"},
		{"status-number", d, replace(`"pending"`, `1`), "status: want string, got number"},
		{"created_at-number", d, replace(`"2026-11-27T13:27:42.123456Z"`, `1795786062`), "created_at: want string, got number"},
		{"created_at-not-a-time", d, replace(`2026-11-27T13:27:42.123456Z`, `yesterday`), "created_at: want an RFC 3339 time"},
		{"created_at-no-zone", d, replace(`2026-11-27T13:27:42.123456Z`, `2026-11-27T13:27:42.123456`), "want an RFC 3339 time"},
		{"created_at-space-separator", d, replace(`2026-11-27T13:27:42.123456Z`, `2026-11-27 13:27:42.123456Z`), "want an RFC 3339 time"},
		{"created_at-month-13", d, replace(`2026-11-27T13:27:42.123456Z`, `2026-13-27T13:27:42.123456Z`), "want an RFC 3339 time"},
		{"created_at-date-only", d, replace(`2026-11-27T13:27:42.123456Z`, `2026-11-27`), "want an RFC 3339 time"},
		{"created_at-before-year-0-in-utc", d, replace(`2026-11-27T13:27:42.123456Z`, `0000-01-01T00:00:00+01:00`), "outside years 0000 to 9999"},
	}
}

// brokenRules: well-formed orders that break a rule of the contract.
func brokenRules() []badRecord {
	const d, v = ClassDecode, ClassValidate
	return []badRecord{
		// Well-formed orders that break a rule.
		{"order_id-empty", v, with(func(o *Order) { o.OrderID = "" }), "order_id: empty"},
		{"order_id-51-characters", v, with(func(o *Order) { o.OrderID = "ORD-" + strings.Repeat("9", 47) }), "order_id: 51 characters, limit 50"},
		{"customer_id-empty", v, with(func(o *Order) { o.CustomerID = "" }), "customer_id: empty"},
		{"customer_id-51-characters", v, with(func(o *Order) { o.CustomerID = strings.Repeat("C", 51) }), "customer_id: 51 characters, limit 50"},
		{"customer_name-empty", v, with(func(o *Order) { o.CustomerName = "" }), "customer_name: empty"},
		{"customer_name-101-characters", v, with(func(o *Order) { o.CustomerName = strings.Repeat("é", 101) }), "customer_name: 101 characters, limit 100"},
		{"customer_email-empty", v, with(func(o *Order) { o.CustomerEmail = "" }), "customer_email: empty"},
		{"customer_email-101-characters", v, with(func(o *Order) { o.CustomerEmail = strings.Repeat("j", 89) + "@example.com" }), "customer_email: 101 characters, limit 100"},
		{"customer_email-without-at", v, with(func(o *Order) { o.CustomerEmail = "jane.smith.42.example.com" }), `customer_email: "jane.smith.42.example.com" has no '@'`},
		{"items-empty", v, with(func(o *Order) { o.Items = nil; o.TotalAmount = 0 }), "items: 0 items, want 1 to 100"},
		{"items-101", v, with(func(o *Order) { repeatItems(o, 101) }), "items: 101 items, want 1 to 100"},
		{"item_id-empty", v, with(func(o *Order) { o.Items[0].ItemID = "" }), "items[0].item_id: empty"},
		{"item-name-empty", v, with(func(o *Order) { o.Items[0].Name = "" }), "items[0].name: empty"},
		{"quantity-0", v, with(func(o *Order) { priced(o, 1099, 0) }), "items[0].quantity: 0 out of range, want 1 to 1000"},
		{"quantity-1001", v, with(func(o *Order) { priced(o, 1099, 1001) }), "items[0].quantity: 1001 out of range"},
		{"quantity-negative", v, with(func(o *Order) { priced(o, 1099, -2) }), "items[0].quantity: -2 out of range"},
		{"price-0", v, with(func(o *Order) { priced(o, 0, 2) }), "items[0].price: 0.00 must be greater than 0"},
		{"price-negative", v, with(func(o *Order) { priced(o, -100, 2) }), "items[0].price: -1.00 must be greater than 0"},
		{"price-negative-zero", v, replace(`"price":10.99,"subtotal":21.98`, `"price":-0,"subtotal":0`), "items[0].price: 0.00 must be greater than 0"},
		{"subtotal-mismatch", v, with(func(o *Order) {
			repeatItems(o, 3)
			o.Items[2].Subtotal = 2197
			o.TotalAmount -= 1
		}), "items[2].subtotal: 21.97 != price 10.99 × quantity 2"},
		{"total_amount-mismatch", v, with(func(o *Order) { o.TotalAmount = 2197 }), "total_amount: 21.97 != sum of subtotals 21.98"},
		{"total_amount-zero", v, with(func(o *Order) { o.TotalAmount = 0 }), "total_amount: 0.00 != sum of subtotals 21.98"},
		{"total_amount-100000000", v, with(func(o *Order) { priced(o, 5_000_000_000, 2) }), "total_amount: 100000000.00 out of range"},
		{"total_amount-above-numeric-10-2", v, with(func(o *Order) { priced(o, 9_999_999_999, 1000) }), "total_amount: 99999999990.00 out of range"},
		{"subtotal-overflow", v, replace(`"price":10.99,"subtotal":21.98`, `"price":92233720368547758.07,"subtotal":21.98`), "items[0].subtotal: 21.98 != price 92233720368547758.07 × quantity 2"},
		{"status-empty", v, with(func(o *Order) { o.Status = "" }), "status: empty"},
		{"status-21-characters", v, with(func(o *Order) { o.Status = "pendingpendingpendin" + "g" }), "status: 21 characters, limit 20"},
		{"status-unknown", v, with(func(o *Order) { o.Status = "shipped" }), `status: "shipped" is not one of pending, processing, completed, failed`},
		{"status-upper-case", v, with(func(o *Order) { o.Status = "PENDING" }), `status: "PENDING" is not one of`},
		{"created_at-zero-time", v, replace(`2026-11-27T13:27:42.123456Z`, `0001-01-01T00:00:00Z`), "created_at: 0001-01-01T00:00:00Z, Go's zero time: the producer never set it"},
		{"nul-in-order_id", v, with(func(o *Order) { o.OrderID = "ORD-1\x00" }), `order_id: contains a NUL character`},
		{"nul-in-customer_id", v, with(func(o *Order) { o.CustomerID = "CUST\x00" }), `customer_id: contains a NUL character`},
		{"nul-in-customer_name", v, with(func(o *Order) { o.CustomerName = "Jane\x00Smith" }), `customer_name: contains a NUL character`},
		{"nul-in-customer_email", v, with(func(o *Order) { o.CustomerEmail = "jane\x00@example.com" }), `customer_email: contains a NUL character`},
		{"nul-in-status", v, replace(`"pending"`, `"pending\u0000"`), `status: contains a NUL character`},
		{"nul-in-item_id", v, with(func(o *Order) { o.Items[0].ItemID = "ITEM\x00" }), `items[0].item_id: contains a NUL character`},
		{"nul-in-item-name", v, with(func(o *Order) { o.Items[0].Name = "Bacon\x00Burger" }), `items[0].name: contains a NUL character`},
		{"nul-in-unknown-item-field", v, replace(`"quantity":2,`, `"quantity":2,"note":"\\\u0000",`), `items: contain a NUL character`},
		{"nul-in-unknown-item-key", v, replace(`"quantity":2,`, `"quantity":2,"\u0000":1,`), `items: contain a NUL character`},
	}
}

func TestBadRecordsRejected(t *testing.T) {
	for _, tt := range badRecords() {
		t.Run(tt.name, func(t *testing.T) {
			var o Order
			err := DecodeAndValidate(tt.data, &o)
			if err == nil {
				t.Fatalf("DecodeAndValidate(%.200q) = nil, want %s error containing %q", tt.data, tt.class, tt.want)
			}
			if got := ErrorClass(err); got != tt.class {
				t.Errorf("class = %q, want %q (error: %v)", got, tt.class, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Errorf("error %q spans lines; DLQ headers and logs want one", err)
			}
		})
	}
}

// TestBadRecordFiles keeps testdata/orders/bad/ and badRecords in step:
// one file per case, same bytes, nothing else.
func TestBadRecordFiles(t *testing.T) {
	dir := filepath.Join(ordersDir, "bad")
	records := badRecords()
	want := map[string][]byte{}
	for _, r := range records {
		name := r.class + "-" + r.name + ".json"
		if _, dup := want[name]; dup {
			t.Fatalf("two bad records are named %s", name)
		}
		want[name] = r.data
	}
	if *update {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range want {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s (run with -update to create it): %v", dir, err)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		w, ok := want[e.Name()]
		switch {
		case !ok:
			t.Errorf("%s: no such case in badRecords (run with -update)", e.Name())
		case !bytes.Equal(data, w):
			t.Errorf("%s: content differs from badRecords (run with -update)", e.Name())
		}
		seen[e.Name()] = true
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("%s: missing (run with -update)", name)
		}
	}
}

// indented is exampleJSON with every kind of JSON whitespace between tokens.
func indented(prefix, indent string) []byte {
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(exampleJSON), prefix, indent); err != nil {
		panic(err)
	}
	return append([]byte(prefix), append(b.Bytes(), "\r\n "...)...)
}

// TestValidEdges are records at the limits of each rule: all must pass.
func TestValidEdges(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"100 items", with(func(o *Order) { repeatItems(o, 100) })},
		{"quantity 1000", with(func(o *Order) { priced(o, 1099, 1000) })},
		{"quantity 1", with(func(o *Order) { priced(o, 1099, 1) })},
		{"price 0.01", with(func(o *Order) { priced(o, 1, 1) })},
		{"total 99999999.99", with(func(o *Order) { priced(o, 9_999_999_999, 1) })},
		{"ids of 50 characters", with(func(o *Order) {
			o.OrderID = "ORD-" + strings.Repeat("9", 46)
			o.CustomerID = strings.Repeat("界", 50)
		})},
		{"name of 100 characters, 200 bytes", with(func(o *Order) { o.CustomerName = strings.Repeat("é", 100) })},
		{"email of 100 characters", with(func(o *Order) { o.CustomerEmail = strings.Repeat("j", 88) + "@example.com" })},
		{"status of every kind", with(func(o *Order) { o.Status = StatusProcessing })},
		{"status completed", with(func(o *Order) { o.Status = StatusCompleted })},
		{"status failed", with(func(o *Order) { o.Status = StatusFailed })},
		{"order_id from another producer", with(func(o *Order) { o.OrderID = "a1b2c3" })},
		{"whitespace everywhere", indented(" \r\n\t", "\t \r\n")},
		{"escaped backslash before u0000 is text", replace(`"quantity":2,`, `"quantity":2,"note":"\\u0000",`)},
		{"nanoseconds kept", replace(`2026-11-27T13:27:42.123456Z`, `2026-11-27T13:27:42.123456789Z`)},
		{"year 9999", replace(`2026-11-27T13:27:42.123456Z`, `9999-12-31T23:59:59.999999Z`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o Order
			if err := DecodeAndValidate(tt.data, &o); err != nil {
				t.Errorf("DecodeAndValidate(%.200q): %v", tt.data, err)
			}
		})
	}
}
