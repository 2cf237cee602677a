package main

import (
	"context"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// testServer is Keeper started in-process on a real loopback listener, as `keeper`
// would start, over a data folder.
type testServer struct {
	url     string
	dataDir string
	logs    *lockedBuffer
	app     *app

	t        *testing.T
	cancel   context.CancelFunc
	done     chan error // serve's result
	stopOnce sync.Once
}

// startServer runs the whole application with env on top of a test-friendly base over a
// fresh data folder, and stops it when the test ends.
func startServer(t *testing.T, env map[string]string) *testServer {
	t.Helper()
	return startServerIn(t, t.TempDir(), env)
}

// startServerIn is startServer over dir, which may hold the data of a server stopped
// earlier: a restart. Each start listens on a new port.
func startServerIn(t *testing.T, dir string, env map[string]string) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	url := "http://" + ln.Addr().String()

	base := map[string]string{
		"KEEPER_DATA_DIR":   dir,
		"KEEPER_ADDR":       ln.Addr().String(),
		"KEEPER_PUBLIC_URL": url,
		"KEEPER_LOG_FORMAT": "json",
	}
	maps.Copy(base, env)
	logs := &lockedBuffer{}
	cfg, err := loadConfig(base, nil)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	log, err := newTestLogger(logs, cfg)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	a, err := newApp(ctx, cfg, log)
	if err != nil {
		cancel()
		_ = ln.Close()
		t.Fatalf("newApp: %v", err)
	}
	s := &testServer{url: url, dataDir: dir, logs: logs, app: a,
		t: t, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- a.serve(ctx, ln) }()
	t.Cleanup(s.stop)
	return s
}

// stop shuts the server down as SIGTERM would, letting its mail worker finish, and
// closes the database; the data folder stays for a restart. Later calls do nothing.
func (s *testServer) stop() {
	s.stopOnce.Do(func() {
		s.cancel()
		if err := <-s.done; err != nil {
			s.t.Errorf("serve: %v", err)
		}
		s.app.close()
	})
}

// waitForMail returns the text of the newest .eml under the data folder whose body
// holds want, waiting (bounded) for the mail worker to write it.
func (s *testServer) waitForMail(t *testing.T, want string, after time.Time) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		files, _ := filepath.Glob(filepath.Join(s.dataDir, "mail", "*.eml"))
		sort.Sort(sort.Reverse(sort.StringSlice(files)))
		for _, f := range files {
			info, err := os.Stat(f)
			if err != nil || info.ModTime().Before(after) {
				continue
			}
			b, err := os.ReadFile(f)
			if err == nil && strings.Contains(string(b), want) {
				return string(b)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no mail containing %q arrived under %s/mail", want, s.dataDir)
	return ""
}

var tokenRe = regexp.MustCompile(`token=([A-Za-z0-9_-]+)`)

// tokenFrom extracts the token of the first link in a message.
func tokenFrom(t *testing.T, msg string) string {
	t.Helper()
	m := tokenRe.FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("no token link in the message:\n%s", msg)
	}
	return m[1]
}

// get fetches a URL and returns the status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}
