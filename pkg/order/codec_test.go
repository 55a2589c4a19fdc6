package order

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGolden pins the exact wire bytes of the SPEC's example order.
// Regenerate with: go test ./pkg/order -run TestGolden -update
func TestGolden(t *testing.T) {
	o := exampleOrder()
	got := AppendJSON(nil, &o)
	if string(got) != exampleJSON {
		t.Errorf("AppendJSON(example) =\n%s\nwant\n%s", got, exampleJSON)
	}
	path := filepath.Join(ordersDir, "valid.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("AppendJSON(example) =\n%s\nwant (%s)\n%s", got, path, want)
	}

	// The golden bytes are checked by a decoder that is not ours, against
	// the SPEC's example: a golden file rewritten by -update from a wrong
	// encoder cannot pass.
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(want))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("encoding/json cannot read %s: %v", path, err)
	}
	item := map[string]any{"item_id": "ITEM-003", "name": "Bacon Burger", "quantity": json.Number("2"),
		"price": json.Number("10.99"), "subtotal": json.Number("21.98")}
	wantMap := map[string]any{
		"order_id": o.OrderID, "customer_id": "CUST-00042", "customer_name": "Jane Smith",
		"customer_email": "jane.smith.42@example.com", "items": []any{item},
		"total_amount": json.Number("21.98"), "status": "pending", "created_at": "2026-11-27T13:27:42.123456Z",
	}
	if fmt.Sprint(m) != fmt.Sprint(wantMap) {
		t.Errorf("encoding/json reads %s as\n%v\nwant the SPEC's example\n%v", path, m, wantMap)
	}
}

// TestDecodeFixtures decodes the hand-written valid records in
// testdata/orders: each must decode to its order, pass Validate, and keep
// the items array byte for byte.
func TestDecodeFixtures(t *testing.T) {
	example := exampleOrder()
	escapes := exampleOrder()
	escapes.CustomerName = "José \"JJ\" O'Brien\\Zoë 🍔\t/"
	escapes.CustomerEmail = "jose.obrien.42@example.com"
	escapes.Items[0].Name = `Bacon Burger \u0000 (not a NUL)`
	moneyForms := exampleOrder()
	moneyForms.Items = []Item{
		{ItemID: "ITEM-003", Name: "Bacon Burger", Quantity: 2, Price: 1090, Subtotal: 2180},
		{ItemID: "ITEM-021", Name: "Party Platter", Quantity: 1, Price: 2000, Subtotal: 2000},
	}
	moneyForms.TotalAmount = 4180
	moneyForms.CreatedAt = time.Date(2026, 11, 27, 13, 27, 42, 0, time.UTC)

	tests := []struct {
		file string
		want Order
	}{
		{"valid.json", example},
		{"valid-pretty.json", example},
		{"valid-unknown-fields.json", example},
		{"valid-offset-time.json", example},
		{"valid-escapes.json", escapes},
		{"valid-money-forms.json", moneyForms},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(ordersDir, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			var got Order
			if err := DecodeAndValidate(data, &got); err != nil {
				t.Fatalf("DecodeAndValidate: %v", err)
			}
			assertOrder(t, &got, &tt.want)
			if want := rawItems(t, data); !bytes.Equal(got.RawItems, want) {
				t.Errorf("RawItems =\n%s\nwant\n%s", got.RawItems, want)
			}
		})
	}
}

// rawItems returns the exact bytes of the "items" value of data, found by
// encoding/json, as the reference for RawItems.
func rawItems(t *testing.T, data []byte) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	return m["items"]
}

func TestRawItemsIsExactInput(t *testing.T) {
	items := "[ {\"name\":\"Bacon Burger\" , \"x\":{\"y\":[1, 2]},\n\"item_id\":\"ITEM-003\",\"quantity\":2,\"price\":10.99,\"subtotal\":21.98}\t]"
	data := []byte(strings.Replace(exampleJSON, exampleItemsJSON, items, 1))
	var o Order
	if err := DecodeAndValidate(data, &o); err != nil {
		t.Fatal(err)
	}
	if string(o.RawItems) != items {
		t.Errorf("RawItems = %q, want %q", o.RawItems, items)
	}
	if cap(o.RawItems) != len(o.RawItems) {
		t.Errorf("cap(RawItems) = %d, want %d so appends cannot overwrite the input", cap(o.RawItems), len(o.RawItems))
	}
}

const exampleItemsJSON = `[{"item_id":"ITEM-003","name":"Bacon Burger","quantity":2,"price":10.99,"subtotal":21.98}]`

func TestAppendItemsJSON(t *testing.T) {
	o := exampleOrder()
	if got := AppendItemsJSON(nil, o.Items); string(got) != exampleItemsJSON {
		t.Errorf("AppendItemsJSON = %s, want %s", got, exampleItemsJSON)
	}
	if got := AppendItemsJSON(nil, nil); string(got) != "[]" {
		t.Errorf("AppendItemsJSON(nil) = %s, want []", got)
	}
}

// TestStringEscaping checks that AppendJSON writes strings encoding/json
// reads back as the same text, and that Decode agrees.
func TestStringEscaping(t *testing.T) {
	tests := []struct {
		name, in, want string // want: the text after a round trip
	}{
		{"plain", "Jane Smith", "Jane Smith"},
		{"quotes and backslash", `say "hi" \o/`, `say "hi" \o/`},
		{"control characters", "a\nb\rc\td\be\ff\x01g\x1fh\x7f", "a\nb\rc\td\be\ff\x01g\x1fh\x7f"},
		{"unicode", "Zoë 李 🍔 \u2028", "Zoë 李 🍔 \u2028"},
		{"html is not escaped", "<a>&</a>", "<a>&</a>"},
		{"invalid UTF-8 replaced", "bad \xff\xfe byte", "bad \uFFFD\uFFFD byte"},
		{"truncated UTF-8 replaced", "end \xe2\x82", "end \uFFFD\uFFFD"},
		{"NUL is escaped (Validate rejects it)", "a\x00b", "a\x00b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := exampleOrder()
			o.CustomerName = tt.in
			data := AppendJSON(nil, &o)
			var ref struct {
				CustomerName string `json:"customer_name"`
			}
			if err := json.Unmarshal(data, &ref); err != nil {
				t.Fatalf("encoding/json rejects AppendJSON output %q: %v", data, err)
			}
			if ref.CustomerName != tt.want {
				t.Errorf("encoding/json reads %q, want %q", ref.CustomerName, tt.want)
			}
			var got Order
			if err := Decode(data, &got); err != nil {
				t.Fatalf("Decode(%q): %v", data, err)
			}
			if got.CustomerName != tt.want {
				t.Errorf("Decode reads %q, want %q", got.CustomerName, tt.want)
			}
		})
	}
}

func TestAppendJSONTime(t *testing.T) {
	tests := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 11, 27, 13, 27, 42, 123456000, time.UTC), "2026-11-27T13:27:42.123456Z"},
		{time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "2026-01-02T03:04:05.000000Z"},
		{time.Date(2026, 1, 2, 3, 4, 5, 999999999, time.UTC), "2026-01-02T03:04:05.999999Z"}, // truncated, as Next does
		{time.Date(2026, 11, 27, 14, 27, 42, 7000, time.FixedZone("CET", 3600)), "2026-11-27T13:27:42.000007Z"},
		{time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), "0000-01-01T00:00:00.000000Z"},
		{time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), "9999-12-31T23:59:59.999999Z"},
	}
	for _, tt := range tests {
		if got := string(appendTime(nil, tt.in)); got != tt.want {
			t.Errorf("appendTime(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestDecodeReuse checks that Decode reuses Items and clears every field of
// the previous order.
func TestDecodeReuse(t *testing.T) {
	var o Order
	big := exampleOrder()
	big.Items = append(big.Items, big.Items[0], big.Items[0])
	big.TotalAmount = 3 * 2198
	if err := Decode(AppendJSON(nil, &big), &o); err != nil {
		t.Fatal(err)
	}
	first := &o.Items[0]
	want := exampleOrder()
	if err := Decode([]byte(exampleJSON), &o); err != nil {
		t.Fatal(err)
	}
	assertOrder(t, &o, &want)
	if &o.Items[0] != first {
		t.Error("Decode allocated a new Items array although the old one had room")
	}
	if string(o.RawItems) != exampleItemsJSON {
		t.Errorf("RawItems = %s, want %s", o.RawItems, exampleItemsJSON)
	}
}

func TestDecodeErrorMessage(t *testing.T) {
	data := []byte(strings.Replace(exampleJSON, `"price":10.99`, `"price":"10.99"`, 1))
	var o Order
	err := Decode(data, &o)
	const want = `decode order: items[0].price: want number, got string`
	if err == nil || err.Error() != want {
		t.Fatalf("Decode error = %v, want %s", err, want)
	}
	var de *DecodeError
	if !errors.As(err, &de) || de.Field != "items[0].price" || !bytes.HasPrefix(data[de.Offset:], []byte(`"10.99"`)) {
		t.Errorf("DecodeError = %+v, want Field items[0].price and Offset at the value", de)
	}
}

func TestErrorClass(t *testing.T) {
	var o Order
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"decode", Decode([]byte("null"), &o), ClassDecode},
		{"validate", DecodeAndValidate([]byte(strings.Replace(exampleJSON, "pending", "shipped", 1)), &o), ClassValidate},
		{"wrapped", errors.Join(errors.New("consume"), &ValidationError{Field: "x", Reason: "y"}), ClassValidate},
		{"other", errors.New("boom"), ""},
		{"nil", nil, ""},
	}
	for _, tt := range tests {
		if got := ErrorClass(tt.err); got != tt.want {
			t.Errorf("%s: ErrorClass(%v) = %q, want %q", tt.name, tt.err, got, tt.want)
		}
	}
}

// TestHotPathAllocations holds the codec to its allocation budget; an
// allocation count is deterministic, unlike a timing.
func TestHotPathAllocations(t *testing.T) {
	o := exampleOrder()
	data := AppendJSON(nil, &o)
	buf := make([]byte, 0, 1024)
	tests := []struct {
		name string
		max  float64
		f    func()
	}{
		{"AppendJSON", 0, func() { buf = AppendJSON(buf[:0], &o) }},
		{"Validate", 0, func() {
			if err := o.Validate(); err != nil {
				t.Fatal(err)
			}
		}},
		{"Decode", 1, func() {
			if err := Decode(data, &o); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		if got := testing.AllocsPerRun(100, tt.f); got > tt.max {
			t.Errorf("%s: %v allocations per run, want at most %v", tt.name, got, tt.max)
		}
	}
}
