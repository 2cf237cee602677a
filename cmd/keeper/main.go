// Command keeper runs the Keeper server and its tools:
//
//	keeper [flags]            serve the HTTP API (see the README for every setting)
//	keeper loadtest [flags]   load-test an HTTP URL
//	keeper keygen -out FILE   create an Ed25519 key file for signing tokens
//	keeper seed-users -n N    store N active users (for experiments and trials)
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// environ returns the process environment as a map.
func environ() map[string]string {
	m := make(map[string]string)
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// run is the whole program behind main, callable from tests. It returns the exit code.
func run(ctx context.Context, args []string, env map[string]string,
	stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "serve":
			args = args[1:]
		case "loadtest":
			return runLoadtest(ctx, args[1:], stdout, stderr)
		case "keygen":
			return runKeygen(args[1:], stderr)
		case "seed-users":
			return runSeedUsers(ctx, args[1:], env, stdout, stderr)
		}
	}

	if err := serve(ctx, args, env, stderr); err != nil {
		fmt.Fprintf(stderr, "keeper: %v\n", err)
		return 1
	}
	return 0
}
