package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keeperhq/keeper/auth"
)

// runKeeper runs the program with args over env and returns its exit code and output.
// A server that starts by mistake is stopped after a few seconds rather than hanging
// the test.
func runKeeper(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, env, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestUsageListsCommandsAndFlags(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"help"}, {"serve", "-h"}, {"help", "serve"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, stdout, stderr := runKeeper(t, nil, args...)
			if code != 0 || stderr != "" {
				t.Fatalf("got exit %d and stderr %q, want 0 and nothing", code, stderr)
			}
			for _, want := range []string{"keeper [serve]", "keeper loadtest",
				"keeper keygen", "keeper seed-users", "keeper help", "-addr", "-public-url"} {
				if !strings.Contains(stdout, want) {
					t.Errorf("the usage does not mention %q:\n%s", want, stdout)
				}
			}
		})
	}
}

// TestFlagHelpNamesVariable checks that the help of every flag of serve names the
// variable that the flag overrides.
func TestFlagHelpNamesVariable(t *testing.T) {
	_, stdout, stderr := runKeeper(t, nil, "-h")
	usage := stdout + stderr
	flags := regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatchIndex(usage, -1)
	if len(flags) < 5 {
		t.Fatalf("found %d flags in the usage, want at least 5:\n%s", len(flags), usage)
	}
	for i, f := range flags {
		end := len(usage)
		if i+1 < len(flags) {
			end = flags[i+1][0]
		}
		name, help := usage[f[2]:f[3]], usage[f[0]:end]
		if !regexp.MustCompile(`\(KEEPER_[A-Z_]+\)`).MatchString(help) {
			t.Errorf("-%s: the help names no variable:\n%s", name, help)
		}
	}
}

func TestHelpOfACommand(t *testing.T) {
	code, stdout, stderr := runKeeper(t, nil, "help", "keygen")
	if code != 0 || !strings.Contains(stdout, "-out") || stderr != "" {
		t.Errorf("got exit %d, stdout %q, stderr %q; want 0 and the flags of keygen",
			code, stdout, stderr)
	}
}

func TestUnknownCommand(t *testing.T) {
	code, stdout, stderr := runKeeper(t, nil, "x")
	want := "keeper: unknown command \"x\"; see keeper -h\n"
	if code != 2 || stderr != want || stdout != "" {
		t.Errorf("got exit %d, stderr %q, stdout %q; want 2 and %q", code, stderr, stdout,
			want)
	}
}

func TestKeygenPrintsFileAndKid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "jwt.pem")
	code, stdout, stderr := runKeeper(t, nil, "keygen", "-out", path)
	if code != 0 || stderr != "" {
		t.Fatalf("got exit %d and stderr %q, want 0 and nothing", code, stderr)
	}
	keys, err := auth.LoadKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], path) ||
		!strings.Contains(lines[0], keys.SigningKeyID()) {
		t.Errorf("got stdout %q, want one line with %s and kid %s", stdout, path,
			keys.SigningKeyID())
	}
}

// TestStartupFailureNamesVariable checks that a database path that cannot be opened is
// reported with the setting that chose it.
func TestStartupFailureNamesVariable(t *testing.T) {
	// A folder cannot be created under a regular file.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"data dir", map[string]string{"KEEPER_DATA_DIR": filepath.Join(file, "data")}, nil,
			"keeper: KEEPER_DATA_DIR: "},
		{"database url", map[string]string{
			"KEEPER_DATABASE_URL": "sqlite:" + filepath.Join(file, "db", "k.db")}, nil,
			"keeper: KEEPER_DATABASE_URL: "},
		{"database url flag", nil,
			[]string{"-database-url", "sqlite:" + filepath.Join(file, "db", "k.db")},
			"keeper: -database-url: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := with(map[string]string{"KEEPER_DATA_DIR": t.TempDir(),
				"KEEPER_ADDR": freeAddr(t)})
			for k, v := range tc.env {
				env[k] = v
			}
			code, _, stderr := runKeeper(t, env, tc.args...)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			last := lines[len(lines)-1]
			if code != 1 || !strings.HasPrefix(last, tc.want) {
				t.Errorf("got exit %d and last line %q, want 1 and %q…", code, last, tc.want)
			}
		})
	}
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
