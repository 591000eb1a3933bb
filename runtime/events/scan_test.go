package events

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzValid checks that valid accepts exactly what json.Valid accepts, and that on what it
// accepts, scanValue, which validates as it goes, finds the end, depth and spacing
// valueEnd finds walking it unchecked.
func FuzzValid(f *testing.F) {
	for _, s := range []string{
		`{}`, `[1,2]`, `{"a":[true,false,null,-0.5e+3,"\u00e9\n"]}`, ` "a" `, `[[[]]]`, `{"a":{"b":[]}}`,
		`01`, `[1,]`, `{"a" 1}`, "\"\x01\"", `"\x"`, `1.`, `-`, `1e`, `[1 2]`, `{"a":1,}`, `"\u12"`, `tru`, `nulls`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, _ := valid(b)
		if want := json.Valid(b); got != want {
			t.Fatalf("valid(%q) = %v, json.Valid says %v", b, got, want)
		}
		if !got {
			return
		}
		i := skipSpace(b, 0)
		v := scanValue(b, i)
		end, depth, spaced := valueEnd(b, i)
		if !v.ok || v.end != end || v.depth != depth || v.spaced != spaced {
			t.Fatalf("scanValue(%q) = %+v, valueEnd found end %d, depth %d, spaced %v", b, v, end, depth, spaced)
		}
	})
}

func TestValidNesting(t *testing.T) {
	for _, n := range []int{maxNesting - 1, maxNesting, maxNesting + 1} {
		for _, s := range []string{
			strings.Repeat("[", n) + strings.Repeat("]", n),
			strings.Repeat(`{"a":`, n-1) + "{}" + strings.Repeat("}", n-1),
			strings.Repeat(`[{"a":`, n/2) + "1" + strings.Repeat("}]", n/2),
		} {
			got, _ := valid([]byte(s))
			if want := json.Valid([]byte(s)); got != want {
				t.Errorf("nested %d deep (%.12s...): valid %v, json.Valid %v", n, s, got, want)
			}
		}
	}
}

func TestValidElements(t *testing.T) {
	for _, tc := range []struct {
		json     string
		elements int
	}{
		{`[]`, 0},
		{` [ ] `, 0},
		{`[1]`, 1},
		{`[{"a":[1,2,3]}, [4,5], "6,7", {}]`, 4},
		{`{"a":[1,2]}`, 0},
	} {
		ok, n := valid([]byte(tc.json))
		if !ok || n != tc.elements {
			t.Errorf("valid(%s) = %v, %d; want true, %d", tc.json, ok, n, tc.elements)
		}
	}
}

// TestPlainEnd compares the eight-bytes-at-a-time scan with a byte loop at every offset.
func TestPlainEnd(t *testing.T) {
	special := func(c byte) bool { return c < 0x20 || c == '"' || c == '\\' }
	inputs := []string{
		"", "abc", "abcdefghijklmnop", `abcdefg"`, `abcdefgh"`, `a\bc`, "abcdefghijk\x1f", "\x00",
		"\xff\xfe\x80\x9f\xa2\xdc\xe0\"", "é\"", "aaaaaaa!#\"", "ééééééé\\", "!!!!!!!!!!!!!!!!\x7f\x7f\"",
		"\x21\x22\x21\x22", "                \x1f", "\x5c\x5b\x5d", "\x1f\x20\x20",
	}
	for _, s := range inputs {
		b := []byte(s)
		for i := 0; i <= len(b); i++ {
			want := i
			for want < len(b) && !special(b[want]) {
				want++
			}
			if got := plainEnd(b, i); got != want {
				t.Errorf("plainEnd(%q, %d) = %d, want %d", s, i, got, want)
			}
		}
	}
}

// TestPlainASCIIEnd does the same for the scan that also stops at bytes over 0x7f, on
// the same inputs and on every single byte value at every place in a word.
func TestPlainASCIIEnd(t *testing.T) {
	special := func(c byte) bool { return c < 0x20 || c == '"' || c == '\\' || c >= 0x80 }
	inputs := []string{
		"", "abc", "abcdefghijklmnop", `abcdefg"`, `abcdefgh"`, `a\bc`, "abcdefghijk\x1f", "\x00",
		"\xff\xfe\x80\x9f\xa2\xdc\xe0\"", "é\"", "aaaaaaa!#\"", "ééééééé\\", "!!!!!!!!!!!!!!!!\x7f\x7f\"",
		"\x21\x22\x21\x22", "                \x1f", "\x5c\x5b\x5d", "\x1f\x20\x20", "0190d3c8-1111-7000-8000-000000000001",
	}
	for c := range 256 {
		for at := range 9 {
			inputs = append(inputs, strings.Repeat("a", at)+string([]byte{byte(c)})+strings.Repeat("b", 9))
		}
	}
	for _, s := range inputs {
		for i := 0; i <= len(s); i++ {
			want := 0
			for want < len(s[i:]) && !special(s[i+want]) {
				want++
			}
			if got := plainASCIIEnd(s[i:]); got != want {
				t.Errorf("plainASCIIEnd(%q) = %d, want %d", s[i:], got, want)
			}
		}
	}
}

func TestIsASCII(t *testing.T) {
	for c := range 256 {
		for at := range 17 {
			b := []byte(strings.Repeat("a", at) + string([]byte{byte(c)}) + strings.Repeat("b", 16-at))
			if got, want := isASCII(b), c < 0x80; got != want {
				t.Errorf("isASCII(%q) = %v, want %v", b, got, want)
			}
		}
	}
	if !isASCII(nil) {
		t.Error("isASCII(nil) = false")
	}
}

func TestValueEnd(t *testing.T) {
	for _, tc := range []struct {
		json       string
		end, depth int
		spaced     bool
	}{
		{`"a\"b" ,`, 6, 0, false},
		{`12.5e3,`, 6, 0, false},
		{`true}`, 4, 0, false},
		{`{"a":[1,{"b":"}]"}]} x`, 20, 3, false},
		{`[ 1 ]`, 5, 1, true},
		{`{"a b":"c d"}`, 13, 1, false},
	} {
		end, depth, spaced := valueEnd([]byte(tc.json), 0)
		if end != tc.end || depth != tc.depth || spaced != tc.spaced {
			t.Errorf("valueEnd(%s) = %d, %d, %v; want %d, %d, %v", tc.json, end, depth, spaced, tc.end, tc.depth, tc.spaced)
		}
	}
}

// BenchmarkValid compares valid with json.Valid on the body of BenchmarkDecode.
func BenchmarkValid(b *testing.B) {
	body := benchBody(1000, false)
	for _, bc := range []struct {
		name  string
		valid func([]byte) bool
	}{
		{"valid", isValid},
		{"json.Valid", json.Valid},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if !bc.valid(body) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
