package httpapi

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf16"
)

// FuzzLoneSurrogate holds loneSurrogate to a plain reading of RFC 8259's escapes: a
// string token made of any text followed by \u escapes of arbitrary UTF-16 code units
// has a lone surrogate exactly when some surrogate unit is not a high half directly
// followed by a low half.
func FuzzLoneSurrogate(f *testing.F) {
	f.Add(`plain`, []byte{0xd8, 0x3d, 0xde, 0x00})        // a pair: 😀
	f.Add(`\`, []byte{0xd8, 0x00})                        // a lone high half after a backslash
	f.Add(`"quoted"`, []byte{0xdc, 0x00, 0xd8, 0x00})     // low before high
	f.Add("\u00e9\n", []byte{0xd8, 0x00, 0x00, 0x41})     // high then a letter
	f.Add(`\ud800`, []byte{0x00, 0x41, 0xff, 0xfd})       // only text that looks like one
	f.Add(``, []byte{0xdb, 0xff, 0xdf, 0xff, 0xd8, 0x3d}) // a pair, then a high half

	f.Fuzz(func(t *testing.T, text string, b []byte) {
		units := make([]uint16, len(b)/2)
		for i := range units {
			units[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
		}
		prefix, _ := json.Marshal(text) // escapes ", \ and controls; never a surrogate
		var raw strings.Builder
		raw.Write(prefix[:len(prefix)-1])
		for i, u := range units {
			format := `\u%04x`
			if i%2 == 1 {
				format = `\u%04X` // either case of hex digits is an escape
			}
			fmt.Fprintf(&raw, format, u)
		}
		raw.WriteString(`"`)

		var s string
		if err := json.Unmarshal([]byte(raw.String()), &s); err != nil {
			t.Fatalf("%s is not a JSON string: %v", raw.String(), err)
		}
		if got, want := loneSurrogate([]byte(raw.String())), hasLone(units); got != want {
			t.Errorf("loneSurrogate(%s): got %v, want %v", raw.String(), got, want)
		}
	})
}

// hasLone reports whether a sequence of UTF-16 code units has an unpaired surrogate.
func hasLone(units []uint16) bool {
	for i := 0; i < len(units); i++ {
		u := rune(units[i])
		switch {
		case !utf16.IsSurrogate(u):
		case u < 0xdc00 && i+1 < len(units) && units[i+1] >= 0xdc00 && units[i+1] < 0xe000:
			i++
		default:
			return true
		}
	}
	return false
}
