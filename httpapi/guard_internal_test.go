package httpapi

import (
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// admittedAt says whether httprate would admit one more request at offset after the
// start of the current window, given the key's counts then: the rate estimate weights
// the previous window's count by its part still inside the sliding window, is rounded,
// and must stay below limit. Nothing is counted meanwhile.
func admittedAt(limit, curr, prev int, at, window time.Duration) bool {
	if at >= window { // the windows have moved on by one
		curr, prev, at = 0, curr, at-window
	}
	if at >= window {
		curr, prev, at = 0, 0, at%window
	}
	weight := float64(window-at) / float64(window)
	rate := int(math.Round(float64(prev)*weight + float64(curr)))
	return rate+1 <= limit
}

func TestRetryWait(t *testing.T) {
	const minute = time.Minute
	cases := []struct {
		name              string
		limit, curr, prev int
		elapsed           time.Duration
		want              time.Duration
	}{
		{"used up at the start of a window", 3, 3, 0, 0, 70 * time.Second},
		{"used up near the end of a window", 3, 3, 0, 55 * time.Second, 15 * time.Second},
		{"the previous window still weighs", 3, 2, 3, 0, 50 * time.Second},
		{"large limit", 30, 30, 30, 30 * time.Second, 31 * time.Second},
		{"nothing admitted ever", 0, 0, 0, 10 * time.Second, minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := retryWait(tc.limit, tc.curr, tc.prev, tc.elapsed, minute)
			if d := got - tc.want; d < -time.Millisecond || d > time.Millisecond {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}

	// Against the model, for every refused state: refused just before the wait ends,
	// admitted just after.
	const step = 10 * time.Millisecond
	for limit := 1; limit <= 5; limit++ {
		for curr := 0; curr <= limit+1; curr++ {
			for prev := 0; prev <= limit+2; prev++ {
				for elapsed := time.Duration(0); elapsed < minute; elapsed += 7 * time.Second {
					if admittedAt(limit, curr, prev, elapsed, minute) {
						continue
					}
					wait := retryWait(limit, curr, prev, elapsed, minute)
					if !admittedAt(limit, curr, prev, elapsed+wait+step, minute) ||
						wait > step && admittedAt(limit, curr, prev, elapsed+wait-step, minute) {
						t.Errorf("limit %d, counts %d/%d at %s: wait %s is not when the "+
							"next request is admitted", limit, curr, prev, elapsed, wait)
					}
				}
			}
		}
	}
}

// TestRetryAfterIsTrue waits, on a two-second window, as long as a refused request is
// told to, and checks that the retry is then admitted and that Retry-After and
// X-RateLimit-Reset name the same moment.
func TestRetryAfterIsTrue(t *testing.T) {
	t.Parallel()
	l := newRateLimit(2, 2*time.Second)
	try := func() (*httptest.ResponseRecorder, bool) {
		w := httptest.NewRecorder()
		return w, l.allow(w, httptest.NewRequest("POST", "/x", nil), "key")
	}

	for i := range 2 {
		if _, ok := try(); !ok {
			t.Fatalf("request %d of a limit of 2 refused", i+1)
		}
	}
	w, ok := try()
	if ok {
		t.Fatal("third request of a limit of 2 admitted")
	}
	secs, err := strconv.ParseInt(w.Header().Get("Retry-After"), 10, 64)
	if err != nil || secs < 1 {
		t.Fatalf("Retry-After: got %q, want whole seconds >= 1", w.Header().Get("Retry-After"))
	}
	reset, err := strconv.ParseInt(w.Header().Get("X-RateLimit-Reset"), 10, 64)
	if d := reset - time.Now().Unix(); err != nil || d < secs-1 || d > secs+1 {
		t.Errorf("X-RateLimit-Reset: got %q, %d s away, want about Retry-After (%d s)",
			w.Header().Get("X-RateLimit-Reset"), d, secs)
	}

	time.Sleep(time.Duration(secs) * time.Second)
	if w, ok := try(); !ok {
		t.Errorf("refused again after waiting Retry-After (%d s): Retry-After %s",
			secs, w.Header().Get("Retry-After"))
	}
}

// TestRateLimitedHeaders replays the reported case on the per-IP limiter as
// newLimiters builds it: 3 a minute, the fourth request refused with a Retry-After that
// agrees with X-RateLimit-Reset.
func TestRateLimitedHeaders(t *testing.T) {
	l := newLimiters(RateLimits{PerIPPerMinute: 3, PerEmailPerHour: 3})
	for i := range 4 {
		w := httptest.NewRecorder()
		ok := l.byIP.allow(w, httptest.NewRequest("POST", "/api/auth/password/forgot", nil),
			"192.0.2.1 POST /api/auth/password/forgot")
		if i < 3 {
			if !ok {
				t.Fatalf("request %d of 3 refused", i+1)
			}
			continue
		}
		if ok {
			t.Fatal("request 4 of 3 admitted")
		}
		secs, _ := strconv.ParseInt(w.Header().Get("Retry-After"), 10, 64)
		reset, _ := strconv.ParseInt(w.Header().Get("X-RateLimit-Reset"), 10, 64)
		if d := reset - time.Now().Unix(); secs < 1 || secs > 71 || d < secs-1 || d > secs+1 {
			t.Errorf("Retry-After %d s, X-RateLimit-Reset %d s away: want them equal, "+
				"at most 71 s", secs, d)
		}
		if w.Code != http.StatusOK {
			t.Errorf("allow wrote a status: %d", w.Code)
		}
	}
}
