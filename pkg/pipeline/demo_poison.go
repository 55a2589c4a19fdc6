package pipeline

// The demo's poison: records the consumers must dead-letter, not store.

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/foodpipe/foodpipe/pkg/kafka"
	"github.com/foodpipe/foodpipe/pkg/order"
)

// injectPoison produces, a third of the way into the run (PoisonAfter
// into one without a duration), one record of each kind the consumers must
// dead-letter instead of storing: bytes that are not JSON, an order whose
// subtotal is wrong, one whose customer name does not fit its column, and
// one PostgreSQL refuses. It returns early, with nothing sent, when ctx
// ends first.
func (d *Demo) injectPoison(ctx context.Context) error {
	after := d.opts.Duration / 3
	if d.opts.Duration <= 0 {
		after = d.opts.PoisonAfter
	}
	if err := sleep(ctx, after); err != nil {
		return nil
	}
	recs, err := poisonRecords(d.opts.Seed, d.opts.Customers)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var deliveryErr error
	p, err := kafka.NewProducer(ctx, d.cluster, d.opts.Producer, kafka.ProducerOptions{
		Topic: d.opts.Kafka.Topic, Headers: order.WireHeaders,
		OnDelivery: func(del kafka.Delivery) {
			mu.Lock()
			defer mu.Unlock()
			if del.Err != nil {
				deliveryErr = del.Err
				return
			}
			for _, r := range recs {
				if bytes.Equal(del.Value, r.value) {
					d.mu.Lock()
					d.poison = append(d.poison, Poison{Class: r.class, What: r.what, Partition: del.Partition, Offset: del.Offset})
					d.mu.Unlock()
				}
			}
		},
	})
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := p.Send(ctx, []byte(r.key), r.value); err != nil {
			break
		}
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.opts.Producer.FlushTimeout)
	defer cancel()
	ferr := p.Flush(fctx)
	p.Close()
	mu.Lock()
	defer mu.Unlock()
	if deliveryErr != nil {
		return fmt.Errorf("produce the poison records: %w", deliveryErr)
	}
	return ferr
}

// poisonRecord is a record the consumers cannot store, and why.
type poisonRecord struct {
	class, what, key string
	value            []byte
}

// poisonRecords are the demo's poison, built from generated orders so that
// each breaks exactly one rule.
func poisonRecords(seed int64, customers int) ([]poisonRecord, error) {
	gen, err := NewGenerator(seed+1, customers)
	if err != nil {
		return nil, err
	}
	var o order.Order
	next := func() order.Order {
		gen.Next(&o)
		c := o
		c.Items = append([]order.Item(nil), o.Items...)
		return c
	}
	subtotal := next()
	subtotal.Items[0].Subtotal++ // a cent off: no longer price × quantity
	subtotal.TotalAmount++       // the total still agrees, so only the subtotal is wrong
	name := next()
	name.CustomerName = strings.Repeat("Bartholomew ", 10) + name.CustomerName // past the column's 100 characters
	refused := next()
	huge := bytes.Replace(order.AppendJSON(nil, &refused), []byte(`"item_id":`), []byte(`"calories":1e200000,"item_id":`), 1)
	return []poisonRecord{
		{order.ClassDecode, "bad JSON: a record cut short", "CUST-00001", []byte(`{"order_id":"ORD-BROKEN","customer_id":`)},
		{order.ClassValidate, "a subtotal a cent off price × quantity", subtotal.CustomerID, order.AppendJSON(nil, &subtotal)},
		{order.ClassValidate, "a customer name longer than its column (100)", name.CustomerID, order.AppendJSON(nil, &name)},
		{order.ClassStore, "a number too large for PostgreSQL's jsonb", refused.CustomerID, huge},
	}, nil
}
