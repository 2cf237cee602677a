package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/keeperhq/keeper"
	"github.com/keeperhq/keeper/auth"
	"github.com/keeperhq/keeper/loadtest"
	"github.com/keeperhq/keeper/sqlite"
)

// runLoadtest is `keeper loadtest`.
func runLoadtest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return loadtest.Main(ctx, args, stdout, stderr)
}

// parseFlags parses a subcommand's flags. A mistake is reported in one line on stderr;
// -h prints the usage on stdout. ok is false when the caller should exit with code.
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(stdout, "Usage of keeper %s:\n", fs.Name())
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return 0, false
	case err != nil:
		fmt.Fprintf(stderr, "keeper %s: %v\n", fs.Name(), err)
		return 2, false
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "keeper %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return 2, false
	}
	return 0, true
}

// runKeygen is `keeper keygen -out FILE`: it writes a new Ed25519 signing key and
// prints the file and the key's kid.
func runKeygen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	out := fs.String("out", "", "file to create (PEM, mode 0600); an existing file is "+
		"never overwritten")
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if *out == "" {
		fmt.Fprintln(stderr, "keeper keygen: -out FILE is required")
		return 2
	}

	kid, err := generateKey(*out)
	if err != nil {
		fmt.Fprintf(stderr, "keeper keygen: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "created %s, signing key kid %s\n", *out, kid)
	return 0
}

// generateKey writes a new key file at path and returns the kid of its key, read back
// as the server will read it.
func generateKey(path string) (string, error) {
	if err := auth.GenerateKeyFile(path); err != nil {
		return "", err
	}
	keys, err := auth.LoadKeys(path)
	if err != nil {
		return "", err
	}
	return keys.SigningKeyID(), nil
}

// runSeedUsers is `keeper seed-users -n N`: it stores N active users directly in the
// configured database, for load experiments and local trials. Every user gets the same
// password, hashed once; addresses are user1@DOMAIN … userN@DOMAIN. Users that exist
// already are left as they are.
func runSeedUsers(ctx context.Context, args []string, env map[string]string,
	stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("seed-users", flag.ContinueOnError)
	n := fs.Int("n", 1000, "number of users")
	password := fs.String("password", "seeded password", "password of every user")
	domain := fs.String("domain", "example.com", "email domain")
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if *n <= 0 {
		fmt.Fprintf(stderr, "keeper seed-users: -n must be positive, got %d\n", *n)
		return 2
	}

	// The first and the last address are the shortest and the longest.
	for _, i := range []int{1, *n} {
		err := auth.ValidateRegistration(auth.Registration{
			Email: fmt.Sprintf("user%d@%s", i, *domain), Name: fmt.Sprintf("User %d", i),
			Password: *password})
		if err != nil {
			fmt.Fprintf(stderr, "keeper seed-users: %s\n", fieldProblems(err))
			return 2
		}
	}

	created, err := seedUsers(ctx, env, *n, *password, *domain)
	if err != nil {
		fmt.Fprintf(stderr, "keeper seed-users: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "seeded %d active users (%d existed): user1@%s … user%d@%s, "+
		"password %q\n", created, *n-created, *domain, *n, *domain, *password)
	return 0
}

func seedUsers(ctx context.Context, env map[string]string, n int,
	password, domain string) (int, error) {
	cfg, err := loadConfig(env, nil)
	if err != nil {
		return 0, err
	}
	db, err := sqlite.Open(ctx, cfg.sqlitePath)
	if err != nil {
		return 0, fmt.Errorf("%s: open database %s: %w", cfg.sqliteVar, cfg.sqlitePath, err)
	}
	defer db.Close()

	hash, err := auth.NewHasher(auth.DefaultParams(), 1).Hash(ctx, password)
	if err != nil {
		return 0, err
	}
	store := sqlite.NewAccountStore(db)
	now := time.Now()
	created := 0
	err = store.Tx(ctx, func(tx keeper.AccountTx) error {
		for i := 1; i <= n; i++ {
			u := keeper.User{Email: fmt.Sprintf("user%d@%s", i, domain),
				Name: fmt.Sprintf("User %d", i), PasswordHash: hash,
				Status: keeper.StatusPending, CreatedAt: now, UpdatedAt: now}
			u, err := tx.CreateUser(ctx, u)
			if keeper.HasCode(err, keeper.CodeEmailTaken) {
				continue
			}
			if err != nil {
				return err
			}
			if err := tx.ActivateUser(ctx, u.ID, now); err != nil {
				return err
			}
			created++
		}
		return nil
	})
	return created, err
}

// fieldProblems puts a validation error's fields on one line, named by the flags that
// set them. Other errors read as themselves.
func fieldProblems(err error) string {
	var e *keeper.Error
	if !errors.As(err, &e) || len(e.Fields) == 0 {
		return err.Error()
	}
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		flag := f.Field
		if flag == "email" {
			flag = "domain"
		}
		parts[i] = fmt.Sprintf("-%s: %s", flag, f.Message)
	}
	return strings.Join(parts, "; ")
}
