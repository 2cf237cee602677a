package keeper_test

import (
	"testing"

	"github.com/keeperhq/keeper"
)

func TestNormalizeEmail(t *testing.T) {
	cases := []struct{ in, want string }{
		{"ann@example.com", "ann@example.com"},
		{"  Ann.Smith@Example.COM\t", "ann.smith@example.com"},
		{"\u212aate@example.com", "\u212aate@example.com"}, // Kelvin sign is not k
		{"\u00dcrs@Example.com", "\u00dcrs@example.com"},   // only ASCII is folded
		{"", ""},
	}
	for _, c := range cases {
		if got := keeper.NormalizeEmail(c.in); got != c.want {
			t.Errorf("NormalizeEmail(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
