package events

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"unicode/utf8"
)

// The functions here walk JSON that encoding/json has already validated (json.Valid), so
// they only find boundaries: a byte loop instead of a full state machine, and no copies.
// Given invalid JSON they return wrong answers but never index out of range.

// skipSpace returns the index of the first byte at or after i that is not JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// trimSpace removes JSON whitespace from both ends of b.
func trimSpace(b []byte) []byte {
	b = b[skipSpace(b, 0):]
	for len(b) > 0 {
		switch b[len(b)-1] {
		case ' ', '\t', '\n', '\r':
			b = b[:len(b)-1]
		default:
			return b
		}
	}
	return b
}

// stringEnd returns the index just after the string that starts with the quote at b[i], and
// whether it holds escapes.
func stringEnd(b []byte, i int) (end int, escaped bool) {
	for i++; ; i++ {
		i = plainEnd(b, i)
		if i >= len(b) {
			return len(b), escaped
		}
		switch b[i] {
		case '"':
			return i + 1, escaped
		case '\\':
			escaped = true
			i++
		}
	}
}

// plainEnd returns the index of the first byte at or after i that is a quote, a backslash
// or a control character: one that ends a run of plain string contents. It looks at eight
// bytes at a time, the way strings are scanned in C JSON parsers; the lowest byte flagged
// is exact (the borrows that may flag bytes above it do not matter).
func plainEnd(b []byte, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q, bs := x^(ones*'"'), x^(ones*'\\')
		special := ((x - ones*0x20) | (q - ones) | (bs - ones)) &^ x & highs
		// The usual "has a zero byte" and "has a byte below n" tests, (v-ones)&^v&highs, with
		// v=x for all three: q and bs have the high bits of x, as '"' and '\\' are ASCII.
		if special != 0 {
			return i + bits.TrailingZeros64(special)/8
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c < 0x20 || c == '"' || c == '\\' {
			return i
		}
	}
	return i
}

// isASCII reports whether every byte of b is below 0x80, eight at a time.
func isASCII(b []byte) bool {
	const highs = 0x8080808080808080
	var or uint64
	i := 0
	for ; i+8 <= len(b); i += 8 {
		or |= binary.LittleEndian.Uint64(b[i:])
	}
	for ; i < len(b); i++ {
		or |= uint64(b[i])
	}
	return or&highs == 0
}

// plainASCIIEnd returns the index of the first byte of s that is not printable ASCII
// other than a quote or a backslash (one appendString may have to escape), or len(s). It
// looks at eight bytes at a time, as plainEnd does, adding bytes with the high bit set.
func plainASCIIEnd(s string) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		q, bs := x^(ones*'"'), x^(ones*'\\')
		special := (((x - ones*0x20) | (q - ones) | (bs - ones)) &^ x & highs) | x&highs
		if special != 0 {
			return i + bits.TrailingZeros64(special)/8
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			return i
		}
	}
	return i
}

// valueEnd returns the index just after the value that starts at b[i]. For an object or
// array it also returns its nesting depth (1 for one without objects or arrays inside) and
// whether whitespace separates its tokens, so that compacting can be skipped when not.
func valueEnd(b []byte, i int) (end, depth int, spaced bool) {
	if i >= len(b) {
		return i, 0, false
	}
	switch b[i] {
	case '"':
		end, _ = stringEnd(b, i)
		return end, 0, false
	case '{', '[':
	default:
		for ; i < len(b); i++ {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i, 0, false
			}
		}
		return i, 0, false
	}
	level := 0
	for i < len(b) {
		switch b[i] {
		case '"':
			i, _ = stringEnd(b, i)
			continue
		case '{', '[':
			level++
			if level > depth {
				depth = level
			}
		case '}', ']':
			level--
			if level == 0 {
				return i + 1, depth, spaced
			}
		case ' ', '\t', '\n', '\r':
			spaced = true
		}
		i++
	}
	return i, depth, spaced
}

// member is one name/value pair of an object.
type member struct {
	key        []byte // between the quotes, escapes not undone
	keyEscaped bool
	value      []byte
	depth      int  // as valueEnd
	spaced     bool // as valueEnd
}

// objectIter walks the members of a JSON object: a validated one, or, when check is set,
// one it validates as it goes.
type objectIter struct {
	b       []byte
	i       int
	check   bool
	invalid bool // check found the object is not valid JSON
	members int  // walked so far, when checking
}

// newObjectIter starts at the validated object that begins at b[start].
func newObjectIter(b []byte, start int) objectIter {
	return objectIter{b: b, i: start + 1}
}

// newCheckingObjectIter starts at the object that begins at b[start], not validated yet:
// after the last member, invalid says whether it was valid JSON, the values included.
func newCheckingObjectIter(b []byte, start int) objectIter {
	return objectIter{b: b, i: start + 1, check: true}
}

// next fills m with the next member and reports whether there was one. After the last,
// it.i is just past the object.
func (it *objectIter) next(m *member) bool {
	if it.check {
		return it.nextChecked(m)
	}
	b := it.b
	i := skipSpace(b, it.i)
	if i < len(b) && b[i] == ',' {
		i = skipSpace(b, i+1)
	}
	if i >= len(b) || b[i] != '"' {
		if i < len(b) && b[i] == '}' {
			i++
		}
		it.i = i
		return false
	}
	kend, esc := stringEnd(b, i)
	m.key, m.keyEscaped = b[i+1:max(i+1, kend-1)], esc
	i = skipSpace(b, kend)
	if i < len(b) && b[i] == ':' {
		i = skipSpace(b, i+1)
	}
	vend, depth, spaced := valueEnd(b, i)
	m.value, m.depth, m.spaced = b[i:vend], depth, spaced
	it.i = vend
	return true
}

// nextChecked is next, checking the JSON as it goes; what does not parse ends the walk
// with invalid set.
func (it *objectIter) nextChecked(m *member) bool {
	b := it.b
	i := skipSpace(b, it.i)
	switch {
	case i < len(b) && b[i] == '}':
		it.i = i + 1
		return false
	case it.members > 0 && i < len(b) && b[i] == ',':
		i = skipSpace(b, i+1)
	case it.members > 0:
		it.invalid = true
		return false
	}
	if i >= len(b) || b[i] != '"' {
		it.invalid = true
		return false
	}
	kend, escaped, ok := validEscapedString(b, i)
	if !ok {
		it.invalid = true
		return false
	}
	m.key, m.keyEscaped = b[i+1:kend-1], escaped
	i = skipSpace(b, kend)
	if i >= len(b) || b[i] != ':' {
		it.invalid = true
		return false
	}
	i = skipSpace(b, i+1)
	var v scanned
	if i < len(b) && b[i] == '"' { // most values are strings: no need for scanValue's stack
		v.end, _, v.ok = validEscapedString(b, i)
	} else {
		v = scanValue(b, i)
	}
	if !v.ok {
		it.invalid = true
		return false
	}
	m.value, m.depth, m.spaced = b[i:v.end], v.depth, v.spaced
	it.i = v.end
	it.members++
	return true
}

// keyString returns the member's name with escapes undone (rarely any).
func (m *member) keyString() string {
	if !m.keyEscaped {
		return string(m.key)
	}
	return unescape(m.key)
}

// unquote returns the contents of the JSON string v (quotes included) with escapes undone,
// and false when it is not valid UTF-8. Without escapes the result aliases v.
func unquote(v []byte) ([]byte, bool) { return unquoteIn(v, false) }

// unquoteIn is unquote for a string from a body known to be ASCII when ascii is set,
// which spares checking its UTF-8.
func unquoteIn(v []byte, ascii bool) ([]byte, bool) {
	if len(v) < 2 {
		return nil, false
	}
	inner := v[1 : len(v)-1]
	if !ascii && !utf8.Valid(inner) {
		return nil, false
	}
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner, true
	}
	return []byte(unescape(inner)), true
}

// unescape undoes the escapes of a string's contents; a lone surrogate becomes U+FFFD, as
// encoding/json does.
func unescape(inner []byte) string {
	quoted := make([]byte, 0, len(inner)+2)
	quoted = append(quoted, '"')
	quoted = append(quoted, inner...)
	quoted = append(quoted, '"')
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		// Unreachable for validated input; keep the bytes rather than lose them.
		return string(inner)
	}
	return s
}

// compact removes the whitespace between the tokens of validated JSON.
func compact(v []byte) []byte {
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); {
		switch c := v[i]; c {
		case '"':
			end, _ := stringEnd(v, i)
			out = append(out, v[i:end]...)
			i = end
		case ' ', '\t', '\n', '\r':
			i++
		default:
			out = append(out, c)
			i++
		}
	}
	return out
}

// kind names the JSON type of the value v, with its article, for messages.
func kind(v []byte) string {
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// isNull reports whether v is absent or the literal null.
func isNull(v []byte) bool {
	return v == nil || string(v) == "null"
}

// maxNesting is how deep valid lets JSON nest: as encoding/json.
const maxNesting = 10000

// valid reports whether b is one JSON value (RFC 8259), with whitespace around it allowed,
// nested at most maxNesting deep: exactly what json.Valid accepts (it is fuzzed against
// it), a few times faster. Like json.Valid it does not check UTF-8. When b is an array it
// also returns the number of its elements.
func valid(b []byte) (ok bool, elements int) {
	v := scanValue(b, skipSpace(b, 0))
	if !v.ok || skipSpace(b, v.end) != len(b) {
		return false, 0
	}
	return true, v.elements
}

// scanned is what scanValue found of a value.
type scanned struct {
	end      int  // just after the value
	elements int  // of the value, when it is an array
	depth    int  // nesting depth, as valueEnd
	spaced   bool // whitespace between its tokens, as valueEnd
	ok       bool // the value is valid JSON
}

// scanValue checks the JSON value that starts at b[i] and finds where it ends, as valid
// does for a whole body: it lets the decoder check and walk an event in one pass.
func scanValue(b []byte, i int) (v scanned) {
	var buf [64]byte
	stack := buf[:0] // the open objects and arrays: '{' or '['
	sp := spaceNoter{b: b}
	var ok bool
	for {
		// i is where a value starts.
		if len(stack) == 1 && stack[0] == '[' {
			v.elements++
		}
		if i >= len(b) {
			return scanned{}
		}
		switch b[i] {
		case '{', '[':
			if len(stack) == maxNesting {
				return scanned{}
			}
			open, closing := b[i], b[i]+2 // '{'+2 is '}', '['+2 is ']'
			v.depth = max(v.depth, len(stack)+1)
			i = sp.skip(i + 1)
			if i < len(b) && b[i] == closing {
				i++
				break
			}
			stack = append(stack, open)
			if open == '{' {
				if i, ok = validKey(&sp, i); !ok {
					return scanned{}
				}
			}
			continue
		case '"':
			if i, ok = validString(b, i); !ok {
				return scanned{}
			}
		case 't':
			if !hasLiteral(b, i, "true") {
				return scanned{}
			}
			i += 4
		case 'f':
			if !hasLiteral(b, i, "false") {
				return scanned{}
			}
			i += 5
		case 'n':
			if !hasLiteral(b, i, "null") {
				return scanned{}
			}
			i += 4
		default:
			if i, ok = validNumber(b, i); !ok {
				return scanned{}
			}
		}
		// After a value: close what ends here, then find where the next value starts.
		for {
			if len(stack) == 0 {
				v.end, v.spaced, v.ok = i, sp.spaced, true
				return v
			}
			i = sp.skip(i)
			if i >= len(b) {
				return scanned{}
			}
			top := stack[len(stack)-1]
			if b[i] == ',' {
				i = sp.skip(i + 1)
				if top == '{' {
					if i, ok = validKey(&sp, i); !ok {
						return scanned{}
					}
				}
				break
			}
			if b[i] != top+2 {
				return scanned{}
			}
			stack = stack[:len(stack)-1]
			i++
		}
	}
}

// spaceNoter skips whitespace, noting whether there was any.
type spaceNoter struct {
	b      []byte
	spaced bool
}

// skip returns the index of the first byte at or after i that is not JSON whitespace.
// Every whitespace byte is at most ' ', so most calls, at a token, return at once.
func (s *spaceNoter) skip(i int) int {
	if i < len(s.b) && s.b[i] <= ' ' {
		if j := skipSpace(s.b, i); j != i {
			s.spaced = true
			return j
		}
	}
	return i
}

// validKey checks a member's name and colon at b[i], returning where its value starts.
func validKey(sp *spaceNoter, i int) (int, bool) {
	b := sp.b
	if i >= len(b) || b[i] != '"' {
		return i, false
	}
	i, ok := validString(b, i)
	if !ok {
		return i, false
	}
	i = sp.skip(i)
	if i >= len(b) || b[i] != ':' {
		return i, false
	}
	return sp.skip(i + 1), true
}

// validString checks the string that starts with the quote at b[i], returning its end.
func validString(b []byte, i int) (int, bool) {
	end, _, ok := validEscapedString(b, i)
	return end, ok
}

// validEscapedString is validString, telling too whether the string holds escapes.
func validEscapedString(b []byte, i int) (end int, escaped, ok bool) {
	for i++; ; i++ {
		i = plainEnd(b, i)
		if i >= len(b) {
			return i, escaped, false
		}
		c := b[i]
		if c == '"' {
			return i + 1, escaped, true
		}
		if c < 0x20 {
			return i, escaped, false
		}
		escaped = true
		i++
		if i >= len(b) {
			return i, escaped, false
		}
		switch b[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		case 'u':
			if i+4 >= len(b) {
				return i, escaped, false
			}
			for _, h := range b[i+1 : i+5] {
				if !isHex(h) {
					return i, escaped, false
				}
			}
			i += 4
		default:
			return i, escaped, false
		}
	}
}

// validNumber checks the number that starts at b[i], returning its end.
func validNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return i, false
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return i, false
		}
		i = skipDigits(b, i)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return i, false
		}
		i = skipDigits(b, i)
	}
	return i, true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

func hasLiteral(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}
