// Command keeper runs the Keeper server and its tools:
//
//	keeper [serve] [flags]    serve the HTTP API (see the README for every setting)
//	keeper loadtest [flags]   load-test an HTTP URL
//	keeper keygen -out FILE   create an Ed25519 key file for signing tokens
//	keeper seed-users -n N    store N active users (for experiments and trials)
//	keeper help [command]     show the usage, or a command's flags
package main

import (
	"context"
	"errors"
	"flag"
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

// usageHeader opens `keeper -h` and `keeper help`; the flags of serve follow it.
const usageHeader = `Usage:
  keeper [serve] [flags]       serve the HTTP API
  keeper loadtest [flags] URL  load-test an HTTP URL
  keeper keygen -out FILE      create an Ed25519 key file for signing tokens
  keeper seed-users [flags]    store N active users (for experiments and trials)
  keeper help [command]        show this usage, or a command's flags

Settings come from STAGE and KEEPER_* variables, each described in the README.
These flags of serve override their variables:
`

// printUsage writes the usage of keeper and the flags of serve to w.
func printUsage(w io.Writer) {
	fmt.Fprint(w, usageHeader)
	fs := newFlagSet()
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// run is the whole program behind main, callable from tests. It returns the exit code:
// 0, 1 for a failure, 2 for a mistake on the command line.
func run(ctx context.Context, args []string, env map[string]string,
	stdout, stderr io.Writer) int {
	cmd, rest := "serve", args
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, rest = args[0], args[1:]
	}

	switch cmd {
	case "serve":
		return runServe(ctx, rest, env, stdout, stderr)
	case "loadtest":
		return runLoadtest(ctx, rest, stdout, stderr)
	case "keygen":
		return runKeygen(rest, stdout, stderr)
	case "seed-users":
		return runSeedUsers(ctx, rest, env, stdout, stderr)
	case "help":
		return runHelp(ctx, rest, env, stdout, stderr)
	}
	fmt.Fprintf(stderr, "keeper: unknown command %q; see keeper -h\n", cmd)
	return 2
}

// runServe is `keeper [serve]`.
func runServe(ctx context.Context, args []string, env map[string]string,
	stdout, stderr io.Writer) int {
	err := serve(ctx, args, env, stderr)
	var usage usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		printUsage(stdout)
		return 0
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "keeper: %v\n", err)
		return 2
	}
	fmt.Fprintf(stderr, "keeper: %v\n", err)
	return 1
}

// runHelp is `keeper help [command]`: the usage of keeper, or the flags of a command.
func runHelp(ctx context.Context, args []string, env map[string]string,
	stdout, stderr io.Writer) int {
	if len(args) > 1 {
		fmt.Fprintf(stderr, "keeper help: unexpected argument %q\n", args[1])
		return 2
	}
	if len(args) == 0 || args[0] == "help" {
		printUsage(stdout)
		return 0
	}
	if strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(stderr, "keeper help: %q is not a command; see keeper -h\n", args[0])
		return 2
	}
	return run(ctx, []string{args[0], "-h"}, env, stdout, stderr)
}
