package bench

import (
	"encoding/binary"
	"math/bits"
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
	size  int
	state uint64
	pool  sync.Pool
}

// NewRandom returns a payload of size random upper-case letters per record,
// drawn from seed.
func NewRandom(size int, seed uint64) *Random {
	return &Random{size: size, state: seed}
}

// Next fills a buffer with new random letters, eight from each 64 random
// bits.
func (p *Random) Next() (key, value []byte) {
	buf, _ := p.pool.Get().(*[]byte)
	if buf == nil || cap(*buf) < p.size {
		b := make([]byte, p.size)
		buf = &b
	}
	v := (*buf)[:p.size]
	i := 0
	for ; i+8 <= len(v); i += 8 {
		binary.LittleEndian.PutUint64(v[i:], letters(p.uint64()))
	}
	if i < len(v) {
		var tail [8]byte
		binary.LittleEndian.PutUint64(tail[:], letters(p.uint64()))
		copy(v[i:], tail[:])
	}
	return nil, v
}

// uint64 is wyrand, Wang Yi's public-domain generator (Go's runtime drew
// its own fast random numbers with it until 1.22): a counter mixed by one
// 64×64→128-bit multiplication, which passes BigCrush and PractRand. It is
// written here because math/rand/v2 offers only PCG and ChaCha8, which
// made the payload cost 1.4× and 2.7× as much (BenchmarkRandom), and the
// payload is the largest item in foodpipe's CPU profile of this bench.
func (p *Random) uint64() uint64 {
	p.state += 0xa0761d6478bd642f
	hi, lo := bits.Mul64(p.state, p.state^0xe7037ed1a0b428db)
	return hi ^ lo
}

// letters turns each byte b of x into the letter 'A' + b·26/256, all eight
// at once: the bytes are spread into 16-bit lanes, four at a time, so that
// b·26 (at most 6630) fits its lane. Byte values map onto the 26 letters
// nine or ten at a time: 22 letters have probability 10/256 and 4 have
// 9/256, 4.699 bits of entropy a letter instead of 4.700 — which no
// compressor of the Kafka protocol (snappy, lz4, zstd, gzip) can tell.
// It costs a fifth of drawing each letter on its own (BenchmarkRandom),
// the profile's largest item before.
func letters(x uint64) uint64 {
	const lanes = 0x00FF00FF00FF00FF
	even := ((x & lanes) * 26 >> 8) & lanes
	odd := (((x >> 8) & lanes) * 26 >> 8) & lanes
	return (even | odd<<8) + 0x4141414141414141
}

// Release returns a value's buffer once it was delivered.
func (p *Random) Release(value []byte) {
	value = value[:0]
	p.pool.Put(&value)
}
