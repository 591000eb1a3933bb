package events

import (
	"testing"
	"time"
)

func TestParseUTC(t *testing.T) {
	for _, tc := range []struct {
		in     string
		ok     bool
		wantNs int
	}{
		{"2024-05-01T12:00:00Z", true, 0},
		{"2024-05-01T12:00:00.1Z", true, 100_000_000},
		{"2024-05-01T12:00:00.123Z", true, 123_000_000},
		{"2024-05-01T12:00:00.123456789Z", true, 123_456_789},
		{"2024-02-29T23:59:59Z", true, 0},
		{"2023-02-29T00:00:00Z", false, 0},            // no such day: left to the full parser, which refuses it
		{"2024-05-01T12:00:60Z", false, 0},            // leap second
		{"2024-05-01T12:00:00+02:00", false, 0},       // another offset: the full parser's
		{"2024-05-01T12:00:00.Z", false, 0},           // a dot without digits
		{"2024-05-01T12:00:00.1234567891Z", false, 0}, // ten digits
		{"2024-05-01t12:00:00z", false, 0},
		{"2024-13-01T12:00:00Z", false, 0},
		{"20x4-05-01T12:00:00Z", false, 0},
	} {
		got, ok := parseUTC([]byte(tc.in))
		if ok != tc.ok {
			t.Errorf("parseUTC(%q) ok = %v, want %v", tc.in, ok, tc.ok)
			continue
		}
		if ok && got.Nanosecond() != tc.wantNs {
			t.Errorf("parseUTC(%q) = %v, nanoseconds %d, want %d", tc.in, got, got.Nanosecond(), tc.wantNs)
		}
	}
}

// FuzzParseUTC holds parseUTC to time.Time.UnmarshalText: whatever it parses, the full
// parser parses to the same instant.
func FuzzParseUTC(f *testing.F) {
	for _, s := range []string{"2024-05-01T12:00:00Z", "2024-05-01T12:00:00.123Z", "0000-01-01T00:00:00.000000001Z",
		"9999-12-31T23:59:59.999999999Z", "2024-02-30T00:00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseUTC([]byte(s))
		if !ok {
			return
		}
		var want time.Time
		if err := want.UnmarshalText([]byte(s)); err != nil {
			t.Fatalf("parseUTC(%q) = %v, but UnmarshalText refuses it: %v", s, got, err)
		}
		if !got.Equal(want) || got.Location() != time.UTC {
			t.Fatalf("parseUTC(%q) = %v, UnmarshalText %v", s, got, want)
		}
	})
}
