package httpapi

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/httprate"

	"github.com/keeperhq/keeper"
)

type userKey struct{}

// userFrom returns the authenticated user that requireAuth or optionalAuth put in ctx.
func userFrom(ctx context.Context) (keeper.User, bool) {
	u, ok := ctx.Value(userKey{}).(keeper.User)
	return u, ok
}

// bearerToken returns the token of an "Authorization: Bearer" header; present reports
// whether the header was sent at all.
func bearerToken(r *http.Request) (token string, present bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	return strings.TrimSpace(token), true
}

// authenticate checks the bearer token, if any, and returns the request with the user
// in its context. A missing token is not an error unless required; a bad one always is.
func (a *API) authenticate(w http.ResponseWriter, r *http.Request, required bool) (*http.Request, error) {
	token, present := bearerToken(r)
	if !present {
		if !required {
			return r, nil
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="keeper"`)
		return nil, keeper.Errorf(keeper.CodeUnauthorized, "a bearer access token is required")
	}

	u, err := a.accounts.Authenticate(r.Context(), token)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="keeper", error="invalid_token"`)
		return nil, err
	}
	return r.WithContext(context.WithValue(r.Context(), userKey{}, u)), nil
}

// requireAuth lets a request through only with a valid access token of an active
// user; otherwise 401 with WWW-Authenticate: Bearer.
func (a *API) requireAuth(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		r, err := a.authenticate(w, r, true)
		if err != nil {
			return err
		}
		return h(w, r)
	}
}

// optionalAuth identifies the caller when a token is sent, and refuses a bad one.
func (a *API) optionalAuth(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		r, err := a.authenticate(w, r, false)
		if err != nil {
			return err
		}
		return h(w, r)
	}
}

// kvWrite guards the key–value writes as KEEPER_KV_WRITE says.
func (a *API) kvWrite(h handlerFunc) handlerFunc {
	if !a.kvWriteAuth {
		return h
	}
	return a.requireAuth(h)
}

// RateLimits configures the limits on the account endpoints that send mail or check
// passwords.
type RateLimits struct {
	PerIPPerMinute    int  // requests from one client IP to one endpoint
	PerEmailPerHour   int  // requests naming one email address at one endpoint
	TrustForwardedFor bool // take the client IP from X-Forwarded-For (behind a proxy)
}

// limiters holds the two kinds of rate limit.
type limiters struct {
	byIP    *rateLimit
	byEmail *rateLimit
	trustXF bool
}

func newLimiters(rl RateLimits) *limiters {
	return &limiters{
		byIP:    newRateLimit(rl.PerIPPerMinute, time.Minute),
		byEmail: newRateLimit(rl.PerEmailPerHour, time.Hour),
		trustXF: rl.TrustForwardedFor,
	}
}

// limitIP refuses a request when its client IP has used up its budget for the route.
func (a *API) limitIP(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		key := a.limits.clientIP(r) + " " + r.Pattern
		if !a.limits.byIP.allow(w, r, key) {
			return keeper.Errorf(keeper.CodeRateLimited,
				"too many requests from this address; retry later")
		}
		return h(w, r)
	}
}

// limitEmail refuses a request when the address it names has used up its budget for
// the route. Addresses are keyed in normalized form so case games do not help.
func (a *API) limitEmail(w http.ResponseWriter, r *http.Request, email string) error {
	key := keeper.NormalizeEmail(email) + " " + r.Pattern
	if !a.limits.byEmail.allow(w, r, key) {
		return keeper.Errorf(keeper.CodeRateLimited,
			"too many requests for this address; retry later")
	}
	return nil
}

// rateLimit is one httprate limiter together with its counter, so that a refused
// client can be told when a retry will truly be admitted. httprate itself always
// answers Retry-After with the window length, whatever the time left.
type rateLimit struct {
	rl      *httprate.RateLimiter
	counter httprate.LimitCounter
	limit   int
	window  time.Duration
}

// newRateLimit allows limit requests per window and key. The counter is passed in
// explicitly so that httprate aligns its windows to the clock (multiples of window
// since the zero time), where retryWait can find them.
func newRateLimit(limit int, window time.Duration) *rateLimit {
	counter := httprate.NewLocalLimitCounter(window)
	return &rateLimit{
		rl:      httprate.NewRateLimiter(limit, window, httprate.WithLimitCounter(counter)),
		counter: counter,
		limit:   limit,
		window:  window,
	}
}

// allow counts a request against key and reports whether it may proceed. A refused
// request gets Retry-After and X-RateLimit-Reset naming the same moment: the first at
// which a retry would be admitted if nothing else is counted meanwhile.
func (l *rateLimit) allow(w http.ResponseWriter, r *http.Request, key string) bool {
	if !l.rl.OnLimit(w, r, key) {
		return true
	}

	now := time.Now().UTC()
	start := now.Truncate(l.window)
	curr, prev, err := l.counter.Get(key, start, start.Add(-l.window))
	wait := l.window
	if err == nil {
		wait = retryWait(l.limit, curr, prev, now.Sub(start), l.window)
	}

	// Whole seconds strictly past the moment, so that a client waiting exactly this
	// long is never early.
	secs := int64(wait/time.Second) + 1
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(now.Unix()+secs, 10))
	return false
}

// retryWait returns how long after now a request would be admitted by httprate's
// sliding window, given the key's counts in the current window (curr) and the one
// before (prev), and the time elapsed in the current window. httprate estimates the
// rate as prev weighted by the part of the previous window still inside the sliding
// one, plus curr, rounds it, and admits a request while the rounded rate is below
// limit: while the estimate is below limit - 0.5.
func retryWait(limit, curr, prev int, elapsed, window time.Duration) time.Duration {
	bar := float64(limit) - 0.5
	if bar <= 0 {
		return window // nothing is ever admitted; suggest a window's pause
	}

	// Admitted in this window once prev's share has decayed far enough.
	if float64(curr) < bar {
		if prev == 0 {
			return 0
		}
		share := 1 - (bar-float64(curr))/float64(prev) // of the window, from its start
		return max(0, time.Duration(share*float64(window))-elapsed)
	}

	// Otherwise in the next window, once this window's count, then the previous
	// one, has decayed.
	share := 1 - bar/float64(curr)
	return window - elapsed + time.Duration(share*float64(window))
}

// clientIP is the address rate limits are keyed by: the peer's, or behind a trusted
// proxy the last hop that proxy recorded in X-Forwarded-For (earlier entries can be
// forged by the client).
func (l *limiters) clientIP(r *http.Request) string {
	if l.trustXF {
		xff := r.Header.Values("X-Forwarded-For")
		if len(xff) > 0 {
			hops := strings.Split(xff[len(xff)-1], ",")
			if ip := strings.TrimSpace(hops[len(hops)-1]); net.ParseIP(ip) != nil {
				return httprate.CanonicalizeIP(ip)
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return httprate.CanonicalizeIP(host)
}
