package pipeline

import (
	"strings"
	"testing"

	"github.com/foodpipe/foodpipe/pkg/order"
)

// TestPoisonRecords checks that each of the demo's poison records breaks
// exactly the rule it claims: the consumer classes it as said, and the
// store one is an order foodpipe itself finds valid (PostgreSQL refuses it).
func TestPoisonRecords(t *testing.T) {
	recs, err := poisonRecords(42, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ class, reason string }{
		{order.ClassDecode, "decode order: "},
		{order.ClassValidate, "items[0].subtotal"},
		{order.ClassValidate, "customer_name"},
		{order.ClassStore, ""},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d poison records, want %d", len(recs), len(want))
	}
	for i, r := range recs {
		var o order.Order
		err := order.DecodeAndValidate(r.value, &o)
		if r.class != want[i].class {
			t.Errorf("record %d: class %q, want %q", i, r.class, want[i].class)
		}
		switch {
		case r.class == order.ClassStore && err != nil:
			t.Errorf("%s: %v, want an order valid to foodpipe", r.what, err)
		case r.class == order.ClassStore:
		case err == nil || order.ErrorClass(err) != r.class || !strings.Contains(err.Error(), want[i].reason):
			t.Errorf("%s: error %v, want class %s naming %q", r.what, err, r.class, want[i].reason)
		}
		if r.key == "" {
			t.Errorf("%s: no key", r.what)
		}
	}
	// The same seed picks the same customers, so the poison lands in the
	// same partitions run after run (ids and times still differ).
	again, err := poisonRecords(42, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if again[i].key != recs[i].key {
			t.Errorf("record %d: key %s, then %s for the same seed", i, recs[i].key, again[i].key)
		}
	}
}
