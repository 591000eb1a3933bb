package events

import "time"

// parseUTC parses the form nearly every client sends, "2006-01-02T15:04:05Z" with an
// optional fraction of 1 to 9 digits, as time.Time.UnmarshalText would, in a fraction of
// its time; ok is false for anything else (another offset, a leap second, a day the month
// does not have), which the caller then hands to UnmarshalText. FuzzParseUTC holds it to
// that.
func parseUTC(s []byte) (t time.Time, ok bool) {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[len(s)-1] != 'Z' {
		return t, false
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 ||
		month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return t, false
	}
	nsec := 0
	if frac := s[19 : len(s)-1]; len(frac) > 0 {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return t, false
		}
		n, ok := digits(frac[1:])
		if !ok {
			return t, false
		}
		for range 10 - len(frac) {
			n *= 10
		}
		nsec = n
	}
	t = time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	if t.Day() != day { // the month has no such day: Date moved it into the next
		return time.Time{}, false
	}
	return t, true
}

// digits parses b, all of it ASCII digits.
func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
