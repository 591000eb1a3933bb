package events

import (
	"strings"
	"testing"
	"time"
)

// checkV7 checks that id is a UUIDv7 for the millisecond of t.
func checkV7(t *testing.T, id string, at time.Time) {
	t.Helper()
	if !uuidV7.MatchString(id) {
		t.Fatalf("%q is not a UUIDv7 (version nibble 7, variant 10)", id)
	}
	hex := strings.ReplaceAll(id, "-", "")
	var ms int64
	for _, c := range hex[:12] {
		ms = ms<<4 | int64(strings.IndexRune("0123456789abcdef", c))
	}
	if ms != at.UnixMilli() {
		t.Fatalf("%s holds time %d, want %d", id, ms, at.UnixMilli())
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewID(testNow)
		checkV7(t, id, testNow)
		if seen[id] {
			t.Fatalf("%s twice", id)
		}
		seen[id] = true
	}
	// Time-ordered: a later millisecond sorts later, as text and as bytes.
	for _, d := range []time.Duration{time.Millisecond, time.Second, 24 * time.Hour, 50 * 365 * 24 * time.Hour} {
		if a, b := NewID(testNow), NewID(testNow.Add(d)); a >= b {
			t.Errorf("NewID(now) = %s is not before NewID(now+%v) = %s", a, d, b)
		}
	}
}

func TestIDSource(t *testing.T) {
	src := newIDSource(testNow)
	seen := map[string]bool{}
	for range 1000 { // several refills
		id := src.next()
		checkV7(t, id, testNow)
		if seen[id] {
			t.Fatalf("%s twice", id)
		}
		seen[id] = true
	}
}

func BenchmarkNewID(b *testing.B) {
	b.Run("NewID", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			NewID(testNow)
		}
	})
	b.Run("source", func(b *testing.B) {
		src := newIDSource(testNow)
		b.ReportAllocs()
		for b.Loop() {
			src.next()
		}
	})
}
