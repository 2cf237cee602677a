package keeper_test

import (
	"strings"
	"testing"

	"github.com/keeperhq/keeper"
)

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{`a"b`, `"a\"b"`},
		{strings.Repeat("a", 64), `"` + strings.Repeat("a", 64) + `"`},
		{strings.Repeat("a", 1<<20), `"` + strings.Repeat("a", 64) + `…" (1048576 bytes)`},
		// A cut inside a character moves back to its start.
		{strings.Repeat("a", 63) + "éé", `"` + strings.Repeat("a", 63) + `…" (67 bytes)`},
		{strings.Repeat("\xff", 100), `"` + strings.Repeat(`\xff`, 64) + `…" (100 bytes)`},
	}
	for _, tt := range tests {
		if got := keeper.Quote(tt.in); got != tt.want {
			t.Errorf("Quote(%.20q…): got %s, want %s", tt.in, got, tt.want)
		}
	}
}
