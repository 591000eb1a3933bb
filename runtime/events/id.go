package events

import (
	"crypto/rand"
	"time"
)

// NewID returns a UUIDv7 (RFC 9562, section 5.7) for t: 48 bits of Unix milliseconds, then
// the version and variant, then 74 random bits from crypto/rand. IDs sort by time to the
// millisecond, so events accepted together are stored together; within a millisecond they
// are in random order.
func NewID(t time.Time) string {
	var random [randomBytes]byte
	// Since Go 1.24 rand.Read never returns an error: it crashes the program instead.
	_, _ = rand.Read(random[:])
	return formatV7(t.UnixMilli(), &random)
}

// randomBytes is what a UUIDv7 takes from crypto/rand: 80 bits, of which 6 are then
// overwritten by the version and variant.
const randomBytes = 10

// idSource hands out NewIDs for one time, reading crypto/rand for many at once: Decode
// assigns IDs to a thousand events in a row.
type idSource struct {
	ms     int64
	random [64 * randomBytes]byte
	used   int
}

func newIDSource(t time.Time) *idSource {
	s := &idSource{ms: t.UnixMilli()}
	s.used = len(s.random)
	return s
}

func (s *idSource) next() string {
	if s.used == len(s.random) {
		_, _ = rand.Read(s.random[:])
		s.used = 0
	}
	r := (*[randomBytes]byte)(s.random[s.used : s.used+randomBytes])
	s.used += randomBytes
	return formatV7(s.ms, r)
}

func formatV7(ms int64, random *[randomBytes]byte) string {
	var u [16]byte
	m := uint64(ms)
	u[0], u[1], u[2] = byte(m>>40), byte(m>>32), byte(m>>24)
	u[3], u[4], u[5] = byte(m>>16), byte(m>>8), byte(m)
	copy(u[6:], random[:])
	u[6] = 0x70 | u[6]&0x0f // version 7
	u[8] = 0x80 | u[8]&0x3f // variant 10 (RFC 9562)

	const hexDigits = "0123456789abcdef"
	var s [36]byte
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			s[j] = '-'
			j++
		}
		s[j], s[j+1] = hexDigits[c>>4], hexDigits[c&0x0f]
		j += 2
	}
	return string(s[:])
}
