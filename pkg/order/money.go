package order

import (
	"errors"
	"math"
	"strconv"
)

// Cents is an amount of money in integer cents. Money on the wire has at most
// two decimals and sums must agree to the cent, so the program never holds
// money in a float.
type Cents int64

// String formats c as a decimal with exactly two decimals, the way it is
// written on the wire: 2198 → "21.98", 900 → "9.00", -5 → "-0.05".
func (c Cents) String() string {
	var b [24]byte
	return string(c.appendTo(b[:0]))
}

// appendTo writes c in the wire form of String without allocating.
func (c Cents) appendTo(dst []byte) []byte {
	u := uint64(c)
	if c < 0 {
		dst = append(dst, '-')
		u = -u // two's complement negation is exact even for math.MinInt64
	}
	dst = strconv.AppendUint(dst, u/100, 10)
	f := u % 100
	return append(dst, '.', byte('0'+f/10), byte('0'+f%10))
}

// ParseCents parses s, the text of a JSON number, as an exact amount of
// money: "10.99", "10.9", "10", "-3.50".
//
// It rejects more than two decimals even when the extra digits are zeros
// ("10.990"), and any exponent ("1e2"), rather than rounding or converting:
// the SPEC allows at most 2 decimals on the wire, and no JSON encoder writes
// an exponent for amounts below 100,000,000, so such text means a producer
// computed money in floating point — exactly the bug this rule exists to
// surface. Amounts outside the range of Cents are out of range.
func ParseCents(s string) (Cents, error) {
	c, reason := parseMoney(s)
	if reason != "" {
		return 0, errors.New("parse money " + strconv.Quote(clip(s)) + ": " + reason)
	}
	return c, nil
}

// Reasons parseMoney gives; Decode prefixes them with the field path.
const (
	reasonMoneySyntax   = "want a JSON number"
	reasonMoneyExponent = "want money as a plain decimal with at most 2 decimals, not an exponent"
	reasonMoneyDecimals = "want money with at most 2 decimals"
	reasonMoneyRange    = "money out of range"
)

// parseMoney is ParseCents without the allocation: the reason is a constant
// so the decoder can build its own message only when it fails.
func parseMoney(s string) (Cents, string) {
	i := 0
	neg := false
	if i < len(s) && s[i] == '-' {
		neg = true
		i++
	}
	start := i
	var units uint64
	big := false
	for i < len(s) && isDigit(s[i]) {
		if units > math.MaxInt64/100 {
			big = true // keep scanning: a syntax error is the better report
		} else {
			units = units*10 + uint64(s[i]-'0')
		}
		i++
	}
	if i == start || (i-start > 1 && s[start] == '0') {
		return 0, reasonMoneySyntax // JSON forbids "", "-" and leading zeros
	}
	var frac uint64
	decimals := 0
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && isDigit(s[i]) {
			if decimals < 2 {
				frac = frac*10 + uint64(s[i]-'0')
			}
			decimals++
			i++
		}
		if i == fs {
			return 0, reasonMoneySyntax
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		return 0, reasonMoneyExponent
	}
	if i != len(s) {
		return 0, reasonMoneySyntax
	}
	if decimals > 2 {
		return 0, reasonMoneyDecimals
	}
	if decimals == 1 {
		frac *= 10
	}
	limit := uint64(math.MaxInt64)
	if neg {
		limit++ // math.MinInt64 cents, so that every Cents String writes parses back
	}
	if big || units > (limit-frac)/100 {
		return 0, reasonMoneyRange
	}
	v := units*100 + frac
	if neg {
		return Cents(-v), "" // wraps to math.MinInt64 for 2⁶³, as intended
	}
	return Cents(v), ""
}

// mulCents returns price × quantity and whether it fits in Cents, so that
// Validate can compare a subtotal without trusting arithmetic to not wrap.
func mulCents(price Cents, quantity int) (Cents, bool) {
	p, q := int64(price), int64(quantity)
	if p == 0 || q == 0 {
		return 0, true
	}
	r := p * q
	if r/q != p || (p == -1 && q == math.MinInt64) || (q == -1 && p == math.MinInt64) {
		return 0, false
	}
	return Cents(r), true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// clip shortens s for an error message, so a megabyte of digits in a poison
// record does not become a megabyte of DLQ header.
func clip(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && s[cut]&0xC0 == 0x80 { // do not split a UTF-8 sequence
		cut--
	}
	return s[:cut] + "…"
}
