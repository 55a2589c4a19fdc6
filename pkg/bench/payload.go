package bench

import (
	"math/rand/v2"
	"sync"

	"github.com/foodpipe/foodpipe/pkg/order"
)

// Orders is the default payload: real generated orders, keyed by
// customer_id, exactly as foodpipe produce sends them.
type Orders struct {
	src  order.Source
	o    order.Order
	keys map[string][]byte
	pool sync.Pool
}

// NewOrders returns an order payload drawing from src.
func NewOrders(src order.Source) *Orders {
	return &Orders{src: src, keys: map[string][]byte{}}
}

// Next generates and encodes the next order.
func (p *Orders) Next() (key, value []byte) {
	p.src.Next(&p.o)
	key, ok := p.keys[p.o.CustomerID]
	if !ok {
		key = []byte(p.o.CustomerID)
		p.keys[p.o.CustomerID] = key
	}
	buf, _ := p.pool.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	return key, order.AppendJSON((*buf)[:0], &p.o)
}

// Release returns a value's buffer for reuse once it was delivered.
func (p *Orders) Release(value []byte) {
	value = value[:0]
	p.pool.Put(&value)
}

// Random is kafka-producer-perf-test's --record-size payload: every record
// gets fresh random upper-case letters (the Kafka tool refills its payload
// per record too, so compression sees no repeats across records), with no
// key.
type Random struct {
	size int
	r    *rand.Rand
	pool sync.Pool
}

// NewRandom returns a payload of size random upper-case letters per record.
func NewRandom(size int, r *rand.Rand) *Random {
	return &Random{size: size, r: r}
}

// Next fills a buffer with new random letters.
func (p *Random) Next() (key, value []byte) {
	buf, _ := p.pool.Get().(*[]byte)
	if buf == nil || cap(*buf) < p.size {
		b := make([]byte, p.size)
		buf = &b
	}
	v := (*buf)[:p.size]
	// Twelve letters per 64 random bits (26^12 < 2^64): the bias is below
	// one in a hundred, and the loop stays cheap next to the send.
	for i := 0; i < len(v); {
		x := p.r.Uint64()
		for j := 0; j < 12 && i < len(v); j++ {
			v[i] = byte('A' + x%26)
			x /= 26
			i++
		}
	}
	return nil, v
}

// Release returns a value's buffer once it was delivered.
func (p *Random) Release(value []byte) {
	value = value[:0]
	p.pool.Put(&value)
}
