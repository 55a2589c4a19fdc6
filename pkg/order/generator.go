package order

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Source yields orders one after the other, into o; *Generator is one.
type Source interface {
	Next(o *Order)
}

// MenuItem is one dish of the mock restaurant.
type MenuItem struct {
	ID       string
	Name     string
	Price    Cents
	Category string
}

// Menu is the SPEC's menu, the only items the generator orders. Treat it as
// read-only: NewGenerator copies it, so later changes reach only later
// generators.
var Menu = [20]MenuItem{
	{"ITEM-001", "Classic Burger", 899, "Burgers"},
	{"ITEM-002", "Cheeseburger", 999, "Burgers"},
	{"ITEM-003", "Bacon Burger", 1099, "Burgers"},
	{"ITEM-004", "Veggie Burger", 849, "Burgers"},
	{"ITEM-005", "French Fries", 349, "Sides"},
	{"ITEM-006", "Onion Rings", 449, "Sides"},
	{"ITEM-007", "Sweet Potato Fries", 499, "Sides"},
	{"ITEM-008", "Coleslaw", 299, "Sides"},
	{"ITEM-009", "Caesar Salad", 699, "Salads"},
	{"ITEM-010", "Garden Salad", 599, "Salads"},
	{"ITEM-011", "Coke", 249, "Beverages"},
	{"ITEM-012", "Sprite", 249, "Beverages"},
	{"ITEM-013", "Iced Tea", 299, "Beverages"},
	{"ITEM-014", "Lemonade", 299, "Beverages"},
	{"ITEM-015", "Milkshake", 499, "Beverages"},
	{"ITEM-016", "Apple Pie", 399, "Desserts"},
	{"ITEM-017", "Ice Cream Sundae", 449, "Desserts"},
	{"ITEM-018", "Brownie", 349, "Desserts"},
	{"ITEM-019", "Chicken Nuggets", 599, "Chicken"},
	{"ITEM-020", "Chicken Sandwich", 799, "Chicken"},
}

// Customer-count bounds for GeneratorConfig.Customers.
const (
	// DefaultCustomers is the SPEC's default for --customers.
	DefaultCustomers = 100
	// MaxCustomers bounds the customer table, built up front (about 100
	// bytes a customer), so a typo in --customers cannot exhaust memory.
	MaxCustomers = 1_000_000
)

// The SPEC's mock-data shape: 1–5 distinct items, each quantity 1–3.
const (
	maxItemsGenerated = 5
	maxQtyGenerated   = 3
)

// GeneratorConfig configures NewGenerator.
type GeneratorConfig struct {
	// Seed fixes the customers (names) and the sequence of customer, item
	// and quantity picks. Order ids and timestamps do not depend on it.
	Seed uint64
	// Customers is the number of customers, CUST-00001 onwards; 0 means
	// DefaultCustomers.
	Customers int
	// Now stamps created_at. Required: domain code never reads the clock.
	Now func() time.Time
	// Names returns the first and last name of customer i (1-based). It
	// draws only from r, which is seeded from Seed and used for nothing
	// else, so a name source (go-faker, in cmd) can be plugged in without
	// changing the order picks for a seed. nil uses a small built-in list.
	Names func(r *mrand.Rand, i int) (first, last string)
	// IDSource supplies the random instance id that makes order ids unique
	// across runs; nil means crypto/rand.Reader.
	IDSource io.Reader
}

// Customer is a mock customer.
type Customer struct {
	ID    string // CUST-00042
	Name  string // Jane Smith
	Email string // jane.smith.42@example.com
}

// Generator produces deterministic mock orders. It is not safe for
// concurrent use; give each producing goroutine its own.
//
// # Order ids
//
// An id is ORD-YYYYMMDD-IIIIIIIIIIIIIIII-N: the UTC date of created_at, an
// instance id of 80 random bits (16 Crockford base32 characters) drawn once
// per Generator from IDSource, and a sequence number starting at 1 and
// counting up within the Generator. Two orders of one Generator differ in
// N. Orders of two Generators — a restart, or producers running side by
// side — collide only if both drew the same 80 bits: for n generators ever
// created the probability is below n²/2⁸¹, about 4·10⁻¹³ for a million
// runs. The date and the seed play no part in uniqueness (a seed repeats
// across runs by design). The longest id, with a 20-digit sequence, is 50
// characters, the column limit.
type Generator struct {
	now       func() time.Time
	rng       *mrand.Rand
	customers []Customer
	menu      [len(Menu)]Item
	perm      [len(Menu)]uint8 // partial Fisher–Yates state, see Next
	instance  string
	seq       uint64
	idBuf     []byte
}

// Independent PCG streams for the picks and the names, so that the picks
// for a seed do not depend on how many numbers a name source draws.
const (
	pickStream = 0x9E3779B97F4A7C15
	nameStream = 0xD1B54A32D192ED03
)

// NewGenerator builds the customers and draws the instance id.
func NewGenerator(cfg GeneratorConfig) (*Generator, error) {
	if cfg.Now == nil {
		return nil, errors.New("order generator: no clock (GeneratorConfig.Now is nil)")
	}
	n := cfg.Customers
	if n == 0 {
		n = DefaultCustomers
	}
	if n < 0 || n > MaxCustomers {
		return nil, fmt.Errorf("order generator: customers %d out of range, want 1 to %d", cfg.Customers, MaxCustomers)
	}
	src := cfg.IDSource
	if src == nil {
		src = rand.Reader
	}
	var raw [10]byte
	if _, err := io.ReadFull(src, raw[:]); err != nil {
		return nil, fmt.Errorf("order generator: read instance id: %w", err)
	}
	names := cfg.Names
	if names == nil {
		names = builtinNames
	}
	g := &Generator{
		now:       cfg.Now,
		rng:       mrand.New(mrand.NewPCG(cfg.Seed, pickStream)),
		customers: make([]Customer, n),
		instance:  crockford(raw),
		idBuf:     make([]byte, 0, MaxIDLen),
	}
	nameRNG := mrand.New(mrand.NewPCG(cfg.Seed, nameStream))
	for i := range g.customers {
		num := i + 1
		first, last := names(nameRNG, num)
		g.customers[i] = Customer{
			ID:    fmt.Sprintf("CUST-%05d", num),
			Name:  displayName(first, last),
			Email: emailPart(first) + "." + emailPart(last) + "." + strconv.Itoa(num) + "@example.com",
		}
	}
	for k, m := range Menu {
		g.menu[k] = Item{ItemID: m.ID, Name: m.Name, Price: m.Price}
		g.perm[k] = uint8(k)
	}
	return g, nil
}

// Customers returns a copy of the generator's customers, CUST-00001 first.
func (g *Generator) Customers() []Customer {
	return append([]Customer(nil), g.customers...)
}

// InstanceID returns the random part of this generator's order ids, worth
// logging once at start so an order can be traced to the producer run.
func (g *Generator) InstanceID() string { return g.instance }

// Next fills o with the next order, reusing the capacity of o.Items. Its only
// allocation is the order_id string (an id often outlives its order — in
// delivery reports, logs, dedup sets — so it gets its own small allocation
// rather than sharing a buffer that would pin its neighbours).
//
// The picks are drawn in a fixed order — customer, item count, then per
// item its menu index and quantity — and changing that order changes the
// data of every seed.
func (g *Generator) Next(o *Order) {
	t := g.now().UTC().Truncate(time.Microsecond)
	c := &g.customers[g.rng.IntN(len(g.customers))]
	n := 1 + g.rng.IntN(maxItemsGenerated)
	items := o.Items[:0]
	if cap(items) < maxItemsGenerated {
		items = make([]Item, 0, maxItemsGenerated)
	}
	var total Cents
	for k := 0; k < n; k++ {
		// Partial Fisher–Yates: perm[:n] end up as this order's picks. Whatever
		// order perm was left in by the previous order, each step picks
		// uniformly among the items not yet taken, so the picks are a
		// uniform sample of distinct items and perm needs no reset.
		j := k + g.rng.IntN(len(g.perm)-k)
		g.perm[k], g.perm[j] = g.perm[j], g.perm[k]
		it := g.menu[g.perm[k]]
		it.Quantity = 1 + g.rng.IntN(maxQtyGenerated)
		it.Subtotal = it.Price * Cents(it.Quantity)
		total += it.Subtotal
		items = append(items, it)
	}
	*o = Order{
		OrderID:       g.nextID(t),
		CustomerID:    c.ID,
		CustomerName:  c.Name,
		CustomerEmail: c.Email,
		Items:         items,
		TotalAmount:   total,
		Status:        StatusPending,
		CreatedAt:     t,
	}
}

func (g *Generator) nextID(t time.Time) string {
	g.seq++
	y, m, d := t.Date()
	b := append(g.idBuf[:0], "ORD-"...)
	b = appendDigits(b, y, 4)
	b = appendDigits(b, int(m), 2)
	b = appendDigits(b, d, 2)
	b = append(b, '-')
	b = append(b, g.instance...)
	b = append(b, '-')
	b = strconv.AppendUint(b, g.seq, 10)
	g.idBuf = b
	return string(b)
}

// crockford encodes 80 bits as 16 Crockford base32 characters: no I, L, O
// or U, so an id read aloud or retyped survives.
func crockford(raw [10]byte) string {
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	var out [16]byte
	var acc uint64
	bits, j := 0, 0
	for _, b := range raw {
		acc = acc<<8 | uint64(b)
		bits += 8
		for bits >= 5 {
			bits -= 5
			out[j] = alphabet[(acc>>bits)&31]
			j++
		}
	}
	return string(out[:])
}

// displayName keeps whatever a name source returns storable: valid UTF-8,
// no control characters (NUL above all), at most MaxNameLen characters.
func displayName(first, last string) string {
	s := strings.ToValidUTF8(strings.TrimSpace(first)+" "+strings.TrimSpace(last), "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if s == "" {
		s = "Customer"
	}
	if utf8.RuneCountInString(s) > MaxNameLen {
		s = string([]rune(s)[:MaxNameLen])
	}
	return s
}

// emailPart lower-cases a name to ASCII letters for the email's local part,
// folding common accented Latin letters (José → jose) and dropping the rest
// (O'Brien → obrien). At most 30 letters, so the whole email stays well
// under MaxEmailLen.
func emailPart(name string) string {
	const max = 30
	var b strings.Builder
	for _, r := range name {
		if b.Len() >= max {
			break
		}
		r = unicode.ToLower(r)
		switch {
		case 'a' <= r && r <= 'z':
			b.WriteRune(r)
		case r >= 0xC0 && r <= 0x17F:
			b.WriteString(foldLatin(r))
		}
	}
	s := b.String()
	if len(s) > max {
		s = s[:max]
	}
	if s == "" {
		return "customer"
	}
	return s
}

// foldLatin maps lower-case letters of Latin-1 Supplement and Latin
// Extended-A to ASCII; anything it does not know maps to "".
func foldLatin(r rune) string {
	switch r {
	case 'à', 'á', 'â', 'ã', 'ä', 'å', 'ā', 'ă', 'ą':
		return "a"
	case 'æ':
		return "ae"
	case 'ç', 'ć', 'ĉ', 'ċ', 'č':
		return "c"
	case 'ď', 'đ', 'ð':
		return "d"
	case 'è', 'é', 'ê', 'ë', 'ē', 'ĕ', 'ė', 'ę', 'ě':
		return "e"
	case 'ĝ', 'ğ', 'ġ', 'ģ':
		return "g"
	case 'ì', 'í', 'î', 'ï', 'ĩ', 'ī', 'ĭ', 'į', 'ı':
		return "i"
	case 'ķ':
		return "k"
	case 'ĺ', 'ļ', 'ľ', 'ŀ', 'ł':
		return "l"
	case 'ñ', 'ń', 'ņ', 'ň':
		return "n"
	case 'ò', 'ó', 'ô', 'õ', 'ö', 'ø', 'ō', 'ŏ', 'ő':
		return "o"
	case 'œ':
		return "oe"
	case 'ŕ', 'ŗ', 'ř':
		return "r"
	case 'ś', 'ŝ', 'ş', 'š':
		return "s"
	case 'ß':
		return "ss"
	case 'ţ', 'ť', 'ŧ':
		return "t"
	case 'þ':
		return "th"
	case 'ù', 'ú', 'û', 'ü', 'ũ', 'ū', 'ŭ', 'ů', 'ű', 'ų':
		return "u"
	case 'ý', 'ÿ', 'ŷ':
		return "y"
	case 'ź', 'ż', 'ž':
		return "z"
	}
	return ""
}

var (
	firstNames = [...]string{
		"James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda",
		"William", "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica",
		"Thomas", "Sarah", "Charles", "Karen", "Daniel", "Nancy", "Matthew", "Lisa",
		"Anthony", "Margaret", "Mark", "Sandra", "Steven", "Ashley", "Andrew", "Emily",
		"Sofia", "Mateo", "Aisha", "Wei", "Priya", "Kenji", "José", "Zoë",
	}
	lastNames = [...]string{
		"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
		"Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Taylor",
		"Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris",
		"Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen",
		"King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "O'Brien", "Müller",
	}
)

func builtinNames(r *mrand.Rand, _ int) (first, last string) {
	return firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))]
}
