package pipeline

import (
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-faker/faker/v4"

	"github.com/foodpipe/foodpipe/pkg/order"
)

// NewGenerator builds the order generator of produce, bench and the demo,
// with realistic customer names from go-faker.
func NewGenerator(seed int64, customers int) (*order.Generator, error) {
	return order.NewGenerator(order.GeneratorConfig{
		Seed:      uint64(seed),
		Customers: customers,
		Now:       time.Now,
		Names:     fakerNames,
	})
}

// Replayable returns a generator whose orders are the same, ids and times
// included, every time it is built with the same seed and start: the sink
// bench produces its backlog with one and feeds the raw COPY with another.
func Replayable(seed int64, start time.Time) (*order.Generator, error) {
	var tick atomic.Int64
	ids := make([]byte, 16)
	binary.BigEndian.PutUint64(ids, uint64(seed))
	binary.BigEndian.PutUint64(ids[8:], uint64(start.UnixNano()))
	return order.NewGenerator(order.GeneratorConfig{
		Seed:     uint64(seed),
		Now:      func() time.Time { return start.Add(time.Duration(tick.Add(1)) * time.Microsecond) },
		Names:    fakerNames,
		IDSource: strings.NewReader(string(ids)),
	})
}

// fakerNames draws a customer's name from go-faker, fed from the generator's
// seeded name stream so that the same seed gives the same names. It runs
// once per customer at start-up, never per order: faker's reflection stays
// off the hot path.
func fakerNames(r *rand.Rand, _ int) (first, last string) {
	faker.SetRandomSource(v1Source{r})
	return faker.FirstName(), faker.LastName()
}

// v1Source adapts a math/rand/v2 generator to the math/rand Source that
// go-faker takes.
type v1Source struct{ r *rand.Rand }

func (s v1Source) Int63() int64 { return s.r.Int64() }
func (s v1Source) Seed(int64)   {}
