package cmd

import (
	"math/rand/v2"
	"time"

	"github.com/go-faker/faker/v4"

	"github.com/foodpipe/foodpipe/pkg/order"
)

// newGenerator builds the order generator of produce and bench, with
// realistic customer names from go-faker.
func newGenerator(seed int64, customers int) (*order.Generator, error) {
	return order.NewGenerator(order.GeneratorConfig{
		Seed:      uint64(seed),
		Customers: customers,
		Now:       time.Now,
		Names:     fakerNames,
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
