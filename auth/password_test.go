package auth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// cheapParams keep tests that need a second parameter set fast.
var cheapParams = Params{Memory: 8192, Time: 1, Threads: 2, SaltLen: 16, KeyLen: 32}

func newTestHasher(t *testing.T, p Params) *Hasher {
	t.Helper()
	return NewHasher(p, 0)
}

func mustHash(t *testing.T, h *Hasher, password string) string {
	t.Helper()
	encoded, err := h.Hash(context.Background(), password)
	if err != nil {
		t.Fatalf("Hash: got error %v, want nil", err)
	}
	return encoded
}

func TestHashFormat(t *testing.T) {
	h := newTestHasher(t, DefaultParams())
	phc := regexp.MustCompile(
		`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

	first := mustHash(t, h, "correct horse battery staple")
	second := mustHash(t, h, "correct horse battery staple")

	if !phc.MatchString(first) {
		t.Errorf("got %q, want a PHC string matching %s", first, phc)
	}
	if first == second {
		t.Errorf("got the same encoding twice (%q), want a fresh salt per hash", first)
	}
}

func TestVerify(t *testing.T) {
	h := newTestHasher(t, DefaultParams())
	prefix72 := strings.Repeat("a", 72)
	multiByte := strings.Repeat("ключ", 32) // 128 characters, 256 bytes

	tests := []struct {
		name      string
		password  string
		candidate string
		want      bool
	}{
		{"same password", "correct horse battery staple", "correct horse battery staple", true},
		{"wrong password", "correct horse battery staple", "correct horse battery stapler", false},
		{"case differs", "Secret-Password", "secret-password", false},
		{"empty matches empty", "", "", true},
		{"empty does not match text", "", "x", false},
		{"128 multi-byte characters", multiByte, multiByte, true},
		{"multi-byte, last character differs", multiByte, multiByte[:254] + "ю", false},
		{"equal in the first 72 bytes", prefix72 + "one", prefix72 + "two", false},
		{"prefix of the password", prefix72 + "x", prefix72, false},
		{"text after a NUL byte counts", "abc\x00def", "abc\x00xyz", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			encoded := mustHash(t, h, tt.password)

			got, err := h.Verify(context.Background(), encoded, tt.candidate)
			if err != nil {
				t.Fatalf("Verify: got error %v, want nil", err)
			}
			if got != tt.want {
				t.Errorf("Verify: got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestVerifyReferenceVectors checks hashes made by the reference implementation's
// command-line tool (Debian package argon2, `argon2 SALT -id -t T -k M -p P -l L -e`),
// so the encoding and the derivation agree with other argon2id implementations.
func TestVerifyReferenceVectors(t *testing.T) {
	h := newTestHasher(t, DefaultParams())

	tests := []struct {
		name        string
		password    string
		encoded     string
		needsRehash bool
	}{
		{
			name:     "default parameters",
			password: "correct horse battery staple",
			encoded: "$argon2id$v=19$m=19456,t=2,p=1$a2VlcGVyLWthdC1zYWx0IQ$" +
				"coXq7dDX6693F1ntryv++QOPY+TIBwAbgZjsSk5H1SM",
		},
		{
			name:     "112 bytes of multi-byte UTF-8",
			password: strings.Repeat("ключ-🔑-", 8),
			encoded: "$argon2id$v=19$m=19456,t=2,p=1$dXRmOC1sb25nLXNhbHQtMA$" +
				"mWryYB//3wJGkMAgNwzzTdoB3ijh4OTH2uDYtoU7mD4",
		},
		{
			name:     "other parameters and a 24-byte key",
			password: "password",
			encoded: "$argon2id$v=19$m=8192,t=1,p=2$c29tZXNhbHRzb21lc2FsdA$" +
				"IaDzJJ0VEzA3R+avLju62RCihBtGGFKy",
			needsRehash: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if ok, err := h.Verify(ctx, tt.encoded, tt.password); !ok || err != nil {
				t.Errorf("Verify(right password): got %v, %v, want true, nil", ok, err)
			}
			if ok, err := h.Verify(ctx, tt.encoded, tt.password+"!"); ok || err != nil {
				t.Errorf("Verify(wrong password): got %v, %v, want false, nil", ok, err)
			}
			if got := h.NeedsRehash(tt.encoded); got != tt.needsRehash {
				t.Errorf("NeedsRehash: got %v, want %v", got, tt.needsRehash)
			}
		})
	}
}

func TestVerifyOtherParams(t *testing.T) {
	current := newTestHasher(t, DefaultParams())

	tests := []struct {
		name   string
		params Params
	}{
		{"cheaper, two threads", cheapParams},
		{"more passes, longer salt and key",
			Params{Memory: 19456, Time: 3, Threads: 1, SaltLen: 32, KeyLen: 64}},
		{"same as current", DefaultParams()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := newTestHasher(t, tt.params)
			encoded := mustHash(t, old, "s3cret password")

			ok, err := current.Verify(context.Background(), encoded, "s3cret password")
			if !ok || err != nil {
				t.Errorf("Verify: got %v, %v, want true, nil", ok, err)
			}
			want := tt.params != DefaultParams()
			if got := current.NeedsRehash(encoded); got != want {
				t.Errorf("NeedsRehash: got %v, want %v", got, want)
			}
		})
	}
}

func TestVerifyMalformed(t *testing.T) {
	h := newTestHasher(t, DefaultParams())
	const (
		salt = "a2VlcGVyLWthdC1zYWx0IQ"                      // 16 bytes
		key  = "coXq7dDX6693F1ntryv++QOPY+TIBwAbgZjsSk5H1SM" // 32 bytes
		head = "$argon2id$v=19$"
	)
	valid := head + "m=19456,t=2,p=1$" + salt + "$" + key
	long := strings.Repeat("A", 87) // 65 bytes once decoded

	tests := []struct {
		name    string
		encoded string
	}{
		{"empty", ""},
		{"only a dollar", "$"},
		{"plain text", "correct horse battery staple"},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", strings.Replace(valid, "argon2id", "argon2i", 1)},
		{"argon2d", strings.Replace(valid, "argon2id", "argon2d", 1)},
		{"version 16", strings.Replace(valid, "v=19", "v=16", 1)},
		{"version missing", "$argon2id$m=19456,t=2,p=1$" + salt + "$" + key},
		{"key missing", head + "m=19456,t=2,p=1$" + salt},
		{"extra field", valid + "$AAAA"},
		{"leading space", " " + valid},
		{"trailing newline", valid + "\n"},
		{"parameters out of order", head + "t=2,m=19456,p=1$" + salt + "$" + key},
		{"extra parameter", head + "m=19456,t=2,p=1,k=1$" + salt + "$" + key},
		{"parameter without value", head + "m=,t=2,p=1$" + salt + "$" + key},
		{"negative memory", head + "m=-1,t=2,p=1$" + salt + "$" + key},
		{"plus sign", head + "m=+19456,t=2,p=1$" + salt + "$" + key},
		{"memory 4 GiB", head + "m=4294967295,t=2,p=1$" + salt + "$" + key},
		{"memory over 32 bits", head + "m=4294967296,t=2,p=1$" + salt + "$" + key},
		{"memory just over the bound", head + "m=262145,t=2,p=1$" + salt + "$" + key},
		{"memory below 8 KiB per thread", head + "m=7,t=1,p=1$" + salt + "$" + key},
		{"zero passes", head + "m=19456,t=0,p=1$" + salt + "$" + key},
		{"too many passes", head + "m=19456,t=17,p=1$" + salt + "$" + key},
		{"zero threads", head + "m=19456,t=2,p=0$" + salt + "$" + key},
		{"too many threads", head + "m=19456,t=2,p=17$" + salt + "$" + key},
		{"threads over 8 bits", head + "m=19456,t=2,p=257$" + salt + "$" + key},
		{"padded salt", head + "m=19456,t=2,p=1$" + salt + "==$" + key},
		{"salt not base64", head + "m=19456,t=2,p=1$" + "a2Vl*GVy$" + key},
		{"non-canonical salt", head + "m=19456,t=2,p=1$" + "a2VlcGVyLWthdC1zYWx0IR$" + key},
		{"salt of 4 bytes", head + "m=19456,t=2,p=1$" + "AAAAAA$" + key},
		{"salt of 65 bytes", head + "m=19456,t=2,p=1$" + long + "$" + key},
		{"key of 8 bytes", head + "m=19456,t=2,p=1$" + salt + "$AAAAAAAAAAA"},
		{"key of 65 bytes", head + "m=19456,t=2,p=1$" + salt + "$" + long},
		{"url-safe alphabet", head + "m=19456,t=2,p=1$" + salt + "$" +
			strings.ReplaceAll(key, "+", "-")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := h.Verify(context.Background(), tt.encoded, "correct horse battery staple")
			if ok || !errors.Is(err, ErrInvalidHash) {
				t.Errorf("Verify(%q): got %v, %v, want false and ErrInvalidHash",
					tt.encoded, ok, err)
			}
			if !h.NeedsRehash(tt.encoded) {
				t.Errorf("NeedsRehash(%q): got false, want true", tt.encoded)
			}
		})
	}
}

// TestWaitForSlot holds the Hasher's only slot, so that each operation has to wait, and
// cancels the wait.
func TestWaitForSlot(t *testing.T) {
	h := NewHasher(cheapParams, 1)
	encoded := mustHash(t, h, "pw")

	tests := []struct {
		name string
		run  func(ctx context.Context) error
	}{
		{"Hash", func(ctx context.Context) error {
			_, err := h.Hash(ctx, "pw")
			return err
		}},
		{"Verify", func(ctx context.Context) error {
			_, err := h.Verify(ctx, encoded, "pw")
			return err
		}},
		{"VerifyDummy", func(ctx context.Context) error {
			return h.VerifyDummy(ctx, "pw")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" cancelled while waiting", func(t *testing.T) {
			h.slots <- struct{}{} // occupy the only slot
			defer h.release()

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- tt.run(ctx) }()
			cancel()

			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("got %v, want context.Canceled", err)
			}
		})
		t.Run(tt.name+" with a free slot and an ended context", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()

			if err := tt.run(ctx); !errors.Is(err, context.Canceled) {
				t.Errorf("got %v, want context.Canceled", err)
			}
		})
		t.Run(tt.name+" once the slot is free again", func(t *testing.T) {
			if err := tt.run(context.Background()); err != nil {
				t.Errorf("got %v, want nil", err)
			}
		})
	}
}

func TestNewHasherSlots(t *testing.T) {
	byDefault := max(2, runtime.GOMAXPROCS(0))

	tests := []struct {
		name          string
		maxConcurrent int
		want          int
	}{
		{"zero means the default", 0, byDefault},
		{"negative means the default", -3, byDefault},
		{"one", 1, 1},
		{"explicit", 7, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHasher(cheapParams, tt.maxConcurrent)
			if got := cap(h.slots); got != tt.want {
				t.Errorf("got %d slots, want %d", got, tt.want)
			}
		})
	}
}

func TestParamsValidate(t *testing.T) {
	ok := DefaultParams()
	with := func(change func(p *Params)) Params {
		p := ok
		change(&p)
		return p
	}

	tests := []struct {
		name    string
		params  Params
		wantErr bool
	}{
		{"default", ok, false},
		{"cheap", cheapParams, false},
		{"zero value", Params{}, true},
		{"zero threads", with(func(p *Params) { p.Threads = 0 }), true},
		{"17 threads", with(func(p *Params) { p.Threads = 17 }), true},
		{"memory below 8 KiB per thread",
			with(func(p *Params) { p.Memory = 15; p.Threads = 2 }), true},
		{"memory of 256 MiB", with(func(p *Params) { p.Memory = 256 * 1024 }), false},
		{"memory over 256 MiB", with(func(p *Params) { p.Memory = 256*1024 + 1 }), true},
		{"zero passes", with(func(p *Params) { p.Time = 0 }), true},
		{"17 passes", with(func(p *Params) { p.Time = 17 }), true},
		{"salt of 7 bytes", with(func(p *Params) { p.SaltLen = 7 }), true},
		{"salt of 65 bytes", with(func(p *Params) { p.SaltLen = 65 }), true},
		{"key of 15 bytes", with(func(p *Params) { p.KeyLen = 15 }), true},
		{"key of 65 bytes", with(func(p *Params) { p.KeyLen = 65 }), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.params.Validate()
			if (err != nil) != tt.wantErr {
				t.Errorf("Validate(%+v): got %v, want error: %v", tt.params, err, tt.wantErr)
			}
		})
	}
}

func TestNewHasherPanicsOnInvalidParams(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewHasher(Params{}): got no panic, want one")
		}
	}()
	NewHasher(Params{}, 0)
}

func BenchmarkHash(b *testing.B) {
	h := NewHasher(DefaultParams(), 0)
	ctx := context.Background()

	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	h := NewHasher(DefaultParams(), 0)
	ctx := context.Background()
	encoded, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}

	for b.Loop() {
		if ok, err := h.Verify(ctx, encoded, "correct horse battery staple"); !ok || err != nil {
			b.Fatalf("got %v, %v, want true, nil", ok, err)
		}
	}
}

// BenchmarkVerifyBurst starts 1000 Verify calls at once on one Hasher, as a burst of
// logins would, and reports the process's peak resident memory during the burst. The
// peak follows the number of slots, not the size of the burst. It needs Linux's /proc.
func BenchmarkVerifyBurst(b *testing.B) {
	const burst = 1000
	for _, slots := range []int{0, 16} {
		h := NewHasher(DefaultParams(), slots)
		b.Run(fmt.Sprintf("slots=%d", cap(h.slots)), func(b *testing.B) {
			encoded, err := h.Hash(context.Background(), "correct horse battery staple")
			if err != nil {
				b.Fatal(err)
			}
			baseline := resetPeakRSS(b)

			for b.Loop() {
				verifyBurst(b, h, encoded, burst)
			}

			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*burst), "ns/verify")
			b.ReportMetric(float64(baseline)/1024, "start-RSS-MiB")
			b.ReportMetric(float64(procStatusKiB(b, "VmHWM"))/1024, "peak-RSS-MiB")
		})
	}
}

// verifyBurst runs n Verify calls concurrently and waits for all of them.
func verifyBurst(b *testing.B, h *Hasher, encoded string, n int) {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			ok, err := h.Verify(context.Background(), encoded, "correct horse battery staple")
			if !ok && err == nil {
				err = errors.New("password did not verify")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
}

// resetPeakRSS returns memory held by earlier benchmarks to the OS, resets the kernel's
// record of peak resident memory (VmHWM) to the current size, and returns that size in
// KiB.
func resetPeakRSS(b *testing.B) int {
	b.Helper()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Skipf("cannot reset peak RSS: %v", err)
	}
	return procStatusKiB(b, "VmRSS")
}

// procStatusKiB reads one "Name: N kB" line of /proc/self/status.
func procStatusKiB(b *testing.B, name string) int {
	b.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skipf("cannot read /proc/self/status: %v", err)
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, name+":"); ok {
			kib, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				b.Fatalf("%s: %v", name, err)
			}
			return kib
		}
	}
	b.Fatalf("no %s in /proc/self/status", name)
	return 0
}
