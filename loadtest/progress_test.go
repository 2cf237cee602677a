package loadtest

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestProgressOnlyForRunsOverASecond(t *testing.T) {
	srv := newServer(t, okHandler)
	tests := []struct {
		name     string
		cfg      Config
		wantDraw bool
	}{
		{"short burst", Config{Mode: ModeBurst, Requests: 5}, false},
		{"rate run of 1.3 s",
			Config{Mode: ModeRate, Rate: 20, Duration: 1300 * time.Millisecond}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The bar's goroutine has stopped by the time Run returns, so reading the
			// buffer afterwards does not race with it.
			var out bytes.Buffer
			tt.cfg.URL, tt.cfg.Progress = srv.URL, &out
			mustRun(t, tt.cfg)

			drawn := strings.Contains(out.String(), "requests")
			if drawn != tt.wantDraw {
				t.Errorf("got progress output %q, want drawn = %v", out.String(), tt.wantDraw)
			}
		})
	}
}
