package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"
)

// Exit codes of Main.
const (
	ExitOK          = 0   // the run finished and its report was written
	ExitFailure     = 1   // the report could not be written
	ExitUsage       = 2   // bad flags or arguments, or the target cannot be reached
	ExitInterrupted = 130 // stopped by ctx (Ctrl-C); what was measured is reported
)

// preflightTimeout bounds the dial that checks the target before a run.
const preflightTimeout = 2 * time.Second

const usageText = `usage: keeper loadtest [flags] URL

Modes (choose one):
  -n N                      burst: N requests at once, one connection each
  -rate R -duration D       rate: R requests/s for D, open loop; latency counts
                            from each request's scheduled send time
  -c C -duration D | -n N   concurrency: C workers in a closed loop
  -sweep START:STEP:MAX -duration D [-p99-limit 100ms]
                            rate runs at increasing rates until p99 passes the limit
                            or too many requests fail

A request fails when it gets no whole response (timeout, refused, reset, …) or
its status is outside 200–399 (listed as e.g. "http 404" under errors; in JSON,
"failed" sums "errors" and "http_errors"). A finished run exits 0 however many
requests failed.

Flags:
`

// options are the parsed command line.
type options struct {
	fs  *flag.FlagSet
	set map[string]bool // flags given on the command line

	n, c, rate     int
	duration       time.Duration
	sweep          string
	p99Limit       time.Duration
	maxErrorRate   float64
	method         string
	headers        headerFlag
	body, bodyFile string
	timeout, slow  time.Duration
	out            string
	jsonOut, quiet bool
	target         string
	stdout, stderr io.Writer
	progress       io.Writer
	sweepStart     int
	sweepStep      int
	sweepMax       int
}

// Main runs the load-test command: args are the arguments after "loadtest". Bad input
// gets one line on stderr and ExitUsage; -h prints the usage on stdout and returns ExitOK.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseOptions(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err == nil {
		err = o.check(ctx)
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadtest: %v\n", err)
		return ExitUsage
	}

	o.stdout, o.stderr = stdout, stderr
	if !o.quiet && isTerminal(stderr) {
		o.progress = stderr
	}
	if o.set["sweep"] {
		return o.runSweep(ctx)
	}
	return o.runOnce(ctx)
}

// parseOptions reads the flags. Flags may come before or after the URL. Parse errors
// are returned rather than printed, so that the user sees one line, not the usage.
func parseOptions(args []string, stdout io.Writer) (*options, error) {
	o := &options{set: map[string]bool{}}
	fs := o.flags()
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}

	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printUsage(fs, stdout) // asked for, so it goes where output goes
			}
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })

	switch len(positional) {
	case 0:
		return nil, errors.New("missing URL (usage: keeper loadtest [flags] URL, -h for help)")
	case 1:
		o.target = positional[0]
	default:
		return nil, fmt.Errorf("want one URL, got %d: %s", len(positional),
			strings.Join(positional, " "))
	}
	return o, nil
}

func (o *options) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.IntVar(&o.n, "n", 0, "requests: a burst of N at once, or with -c a total to stop at")
	fs.IntVar(&o.c, "c", 0, "concurrency mode: number of closed-loop workers")
	fs.IntVar(&o.rate, "rate", 0, "rate mode: requests per second, open loop")
	fs.DurationVar(&o.duration, "duration", 0, "how long a rate, concurrency or sweep run lasts")
	fs.StringVar(&o.sweep, "sweep", "", "sweep mode: rates START:STEP:MAX, e.g. 500:500:5000")
	fs.DurationVar(&o.p99Limit, "p99-limit", 100*time.Millisecond,
		"sweep: p99 latency above which a rate fails")
	fs.Float64Var(&o.maxErrorRate, "sweep-max-errors", 0.01,
		"sweep: fraction of failed requests (transport errors or status outside 200-399)"+
			" above which a rate fails")
	fs.StringVar(&o.method, "method", http.MethodGet, "HTTP method")
	fs.Var(&o.headers, "H", "request header 'Name: value' (repeatable)")
	fs.StringVar(&o.body, "body", "", "request body")
	fs.StringVar(&o.bodyFile, "body-file", "", "file holding the request body")
	fs.DurationVar(&o.timeout, "timeout", DefaultTimeout, "per-request timeout")
	fs.DurationVar(&o.slow, "slow", DefaultSlow, "count requests slower than this")
	fs.StringVar(&o.out, "out", "", "directory for summary.json, requests.csv and plots")
	fs.BoolVar(&o.jsonOut, "json", false, "print the summary as JSON")
	fs.BoolVar(&o.quiet, "quiet", false, "print nothing but errors and -json output")
	o.fs = fs
	return fs
}

func printUsage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprint(w, usageText)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// headerFlag collects repeated -H values.
type headerFlag struct{ h http.Header }

func (f *headerFlag) String() string { return "" }

// Set adds one 'Name: value' header.
func (f *headerFlag) Set(s string) error {
	name, value, ok := strings.Cut(s, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" || strings.ContainsAny(name, " \t") {
		return errors.New("want 'Name: value'")
	}
	if f.h == nil {
		f.h = http.Header{}
	}
	f.h.Add(name, strings.TrimSpace(value))
	return nil
}

// check validates the flags together, loads the body and makes sure the target
// answers a TCP dial, so that a typo fails in two seconds rather than as a run full
// of refused connections.
func (o *options) check(ctx context.Context) error {
	if err := o.checkMode(); err != nil {
		return err
	}
	if err := o.checkValues(); err != nil {
		return err
	}

	u, err := url.Parse(o.target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("invalid URL %q: want http://host[:port]/path or https://…", o.target)
	}
	if err := o.loadBody(); err != nil {
		return err
	}

	// The library's own checks come last: their words fit a Go caller less than the
	// flag-named messages above, which catch the common mistakes first.
	if o.set["sweep"] {
		err = o.sweepConfig().Validate()
	} else {
		err = o.config().Validate()
	}
	if err != nil {
		return err
	}
	if err := checkFileLimit(o.connections()); err != nil {
		return err
	}
	return preflight(ctx, u)
}

// checkMode decides the mode from the flags that were given and rejects combinations
// that do not make one.
func (o *options) checkMode() error {
	given := func(names ...string) string {
		for _, n := range names {
			if o.set[n] {
				return n
			}
		}
		return ""
	}

	switch {
	case o.set["sweep"]:
		if f := given("n", "c", "rate"); f != "" {
			return fmt.Errorf("-sweep cannot be combined with -%s", f)
		}
		return o.needDuration("-sweep")
	case o.set["rate"]:
		if f := given("n", "c"); f != "" {
			return fmt.Errorf("-rate cannot be combined with -%s", f)
		}
		return o.needDuration("-rate")
	case o.set["c"]:
		if !o.set["n"] && !o.set["duration"] {
			return errors.New("-c needs -duration, -n or both")
		}
	case o.set["n"]:
		if o.set["duration"] {
			return errors.New("-duration needs -rate, -c or -sweep; a burst (-n alone) has none")
		}
	default:
		return errors.New("choose a mode: -n N (burst), -rate R -duration D, " +
			"-c C -duration D, or -sweep START:STEP:MAX -duration D")
	}
	return nil
}

func (o *options) needDuration(mode string) error {
	if !o.set["duration"] {
		return fmt.Errorf("%s needs -duration", mode)
	}
	return nil
}

// checkValues rejects values out of range, naming the flag.
func (o *options) checkValues() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"n", o.n}, {"c", o.c}, {"rate", o.rate}} {
		if o.set[f.name] && f.v <= 0 {
			return fmt.Errorf("-%s must be positive, got %d", f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"duration", o.duration}, {"timeout", o.timeout}, {"slow", o.slow},
		{"p99-limit", o.p99Limit}} {
		if o.set[f.name] && f.v <= 0 {
			return fmt.Errorf("-%s must be positive, got %s", f.name, f.v)
		}
	}
	if o.set["body"] && o.set["body-file"] {
		return errors.New("-body and -body-file cannot be used together")
	}
	if o.set["sweep"] {
		return o.parseSweep()
	}
	return nil
}

// parseSweep reads START:STEP:MAX.
func (o *options) parseSweep() error {
	bad := fmt.Errorf("-sweep %q: want START:STEP:MAX in requests/s, e.g. 500:500:5000", o.sweep)
	parts := strings.Split(o.sweep, ":")
	if len(parts) != 3 {
		return bad
	}

	var nums [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return bad
		}
		nums[i] = n
	}
	o.sweepStart, o.sweepStep, o.sweepMax = nums[0], nums[1], nums[2]
	return nil
}

func (o *options) loadBody() error {
	if o.bodyFile == "" {
		return nil
	}
	b, err := os.ReadFile(o.bodyFile)
	if err != nil {
		return fmt.Errorf("read -body-file: %w", err)
	}
	o.body = string(b)
	return nil
}

// connections is how many sockets the run opens at least.
func (o *options) connections() int {
	switch {
	case o.set["c"]:
		return o.c
	case o.set["n"]:
		return o.n
	default:
		return 0
	}
}

// preflight dials the target once.
func preflight(ctx context.Context, u *url.URL) error {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	addr := net.JoinHostPort(u.Hostname(), port)

	d := net.Dialer{Timeout: preflightTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot reach %s: %s", addr, dialReason(err))
	}
	return conn.Close()
}

// dialReason reduces a dial error to its cause, e.g. "connection refused".
func dialReason(err error) string {
	var sys *os.SyscallError
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.As(err, &sys):
		return sys.Err.Error()
	case errors.As(err, &dns):
		return dns.Err
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("no answer within %s", preflightTimeout)
	default:
		return err.Error()
	}
}

// config returns the single-run configuration the flags describe.
func (o *options) config() Config {
	cfg := Config{
		URL: o.target, Method: o.method, Header: o.headers.h, Timeout: o.timeout,
		Slow: o.slow, Requests: o.n, Concurrency: o.c, Rate: o.rate, Duration: o.duration,
	}
	if o.body != "" {
		cfg.Body = []byte(o.body)
	}
	switch {
	case o.set["rate"] || o.set["sweep"]:
		cfg.Mode = ModeRate
	case o.set["c"]:
		cfg.Mode = ModeConcurrency
	default:
		cfg.Mode = ModeBurst
	}
	return cfg
}

func (o *options) sweepConfig() SweepConfig {
	return SweepConfig{
		Run: o.config(), Start: o.sweepStart, Step: o.sweepStep, Max: o.sweepMax,
		P99Limit: o.p99Limit, MaxErrorRate: o.maxErrorRate,
	}
}

// runOnce performs a single run and reports it.
func (o *options) runOnce(ctx context.Context) int {
	cfg := o.config()
	cfg.Progress = o.progress
	o.info("%s\n", describe(cfg))

	res, err := Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(o.stderr, "loadtest: %v\n", err)
		return ExitUsage
	}

	if err := o.printSummary(res.Summary()); err != nil {
		return o.fail(err)
	}
	if o.out != "" {
		if err := res.WriteFiles(o.out); err != nil {
			return o.fail(err)
		}
		o.info("wrote %s, %s and plots to %s\n", SummaryFile, RecordsFile, o.out)
	}
	return exitCode(res.Interrupted)
}

// describe says what a run is about to do, in one line.
func describe(cfg Config) string {
	switch cfg.Mode {
	case ModeBurst:
		return fmt.Sprintf("burst: %d %s requests at once to %s",
			cfg.Requests, cfg.method(), cfg.URL)
	case ModeRate:
		return fmt.Sprintf("rate: %d %s requests/s for %s to %s",
			cfg.Rate, cfg.method(), cfg.Duration, cfg.URL)
	default:
		return fmt.Sprintf("concurrency: %d workers sending %s to %s",
			cfg.Concurrency, cfg.method(), cfg.URL)
	}
}

func (o *options) printSummary(s Summary) error {
	switch {
	case o.jsonOut:
		return writeJSON(o.stdout, s)
	case o.quiet:
		return nil
	default:
		return s.WriteText(o.stdout)
	}
}

// runSweep performs a sweep, printing a line per step and the verdict.
func (o *options) runSweep(ctx context.Context) int {
	sc := o.sweepConfig()
	sc.Run.Progress = o.progress
	sc.OnStep = o.onSweepStep
	o.info("sweep: %d to %d requests/s in steps of %d, %s each, p99 limit %s\n",
		sc.Start, sc.Max, sc.Step, sc.Run.Duration, sc.P99Limit)

	res, err := Sweep(ctx, sc)
	if err != nil {
		return o.fail(err)
	}

	if o.jsonOut {
		err = writeJSON(o.stdout, res)
	} else if !o.quiet {
		_, err = fmt.Fprintln(o.stdout, verdict(res))
	}
	if err != nil {
		return o.fail(err)
	}
	if o.out != "" {
		if err := res.WriteFiles(o.out); err != nil {
			return o.fail(err)
		}
		o.info("wrote %s, %s and one directory per rate to %s\n", SweepFile, SweepPlot, o.out)
	}
	return exitCode(res.Interrupted)
}

// onSweepStep prints one step and saves its files under out/rate-NNNNNN.
func (o *options) onSweepStep(st SweepStep, res *Result) error {
	line := stepLine(st)
	switch {
	case o.quiet:
	case o.jsonOut:
		fmt.Fprintln(o.stderr, line)
	default:
		fmt.Fprintln(o.stdout, line)
	}
	if o.out == "" {
		return nil
	}
	return res.WriteFiles(filepath.Join(o.out, fmt.Sprintf("rate-%06d", st.Rate)))
}

func stepLine(st SweepStep) string {
	s := st.Summary
	mark := "ok"
	switch {
	case s.Interrupted:
		mark = "interrupted"
	case !st.Passed:
		mark = "FAIL"
	}
	return fmt.Sprintf("%7d req/s: %s  finished %.1f req/s  p50 %s  p99 %s  failed %d/%d",
		st.Rate, mark, s.Throughput, round(s.Latency.P50), round(s.Latency.P99),
		s.Failed(), s.Requests)
}

// verdict states the sweep's outcome in a sentence.
func verdict(r *SweepResult) string {
	limit := fmt.Sprintf("p99 ≤ %s", r.P99Limit)
	switch {
	case r.Interrupted:
		return fmt.Sprintf("interrupted; highest rate within %s so far: %d req/s",
			limit, r.Sustained)
	case r.Broke == 0:
		return fmt.Sprintf("every rate up to %d req/s stayed within %s", r.Sustained, limit)
	case r.Sustained == 0:
		return fmt.Sprintf("the first rate, %d req/s, already broke %s", r.Broke, limit)
	default:
		return fmt.Sprintf("sustained %d req/s within %s; %d req/s broke it",
			r.Sustained, limit, r.Broke)
	}
}

// info prints a progress line on stderr unless -quiet.
func (o *options) info(format string, args ...any) {
	if !o.quiet {
		fmt.Fprintf(o.stderr, "loadtest: "+format, args...)
	}
}

func (o *options) fail(err error) int {
	fmt.Fprintf(o.stderr, "loadtest: %v\n", err)
	return ExitFailure
}

func exitCode(interrupted bool) int {
	if interrupted {
		return ExitInterrupted
	}
	return ExitOK
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// isTerminal reports whether w is a terminal, where a progress bar's carriage returns
// redraw one line instead of piling up.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
