package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/keeperhq/keeper/auth"
	"github.com/keeperhq/keeper/loadtest"
)

// runLoadtest is `keeper loadtest`.
func runLoadtest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return loadtest.Main(ctx, args, stdout, stderr)
}

// runKeygen is `keeper keygen -out FILE`: it writes a new Ed25519 signing key.
func runKeygen(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "file to create (PEM, mode 0600)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" {
		fmt.Fprintln(stderr, "keeper keygen: -out FILE is required")
		return 2
	}
	if err := auth.GenerateKeyFile(*out); err != nil {
		fmt.Fprintf(stderr, "keeper keygen: %v\n", err)
		return 1
	}
	return 0
}
