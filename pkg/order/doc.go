// Package order is foodpipe's domain: the food order, its wire format v1
// (compact JSON), money in integer cents, the validity rules of the SPEC, and
// the deterministic mock-order generator.
//
// The producer (Generator.Next + AppendJSON) and the consumer (Decode +
// Validate) run this code once per record, so the codec is hand-written: no
// reflection, no float arithmetic, and at most one allocation per order.
// The package imports only the standard library so that every other package
// may depend on it.
//
// # Decode versus Validate
//
// The consumer dead-letters a record with class "decode" or "validate". The
// split is by what went wrong:
//
//   - Decode (*DecodeError): the bytes are not an order of this shape — not
//     UTF-8, not JSON, not an object, a field missing, duplicated or of the
//     wrong JSON type, money that is not an exact amount of cents (more than
//     2 decimals, an exponent, out of int64 range), a quantity that is not an
//     integer, a created_at that is not an RFC 3339 time.
//   - Validate (*ValidationError): the order has the right shape but breaks a
//     business or storage rule — lengths, the '@' in the email, item counts,
//     quantity and price ranges, subtotals and total, status, NUL characters.
//
// # Strictness
//
// Decode accepts RFC 8259 JSON with three deliberate restrictions, all of
// them about data that would be ambiguous or that PostgreSQL could not store:
// duplicate names of known fields are rejected (parsers disagree about which
// one wins, so a duplicate "total_amount" could mean different orders to
// different readers), \u escapes of lone UTF-16 surrogates are rejected
// (jsonb refuses them), and nesting deeper than 1000 levels is rejected
// (bounded stack). Everything encoding/json rejects, Decode rejects too; a
// fuzz test holds it to that. Unknown fields are skipped, whatever their
// value, for forward compatibility.
package order
