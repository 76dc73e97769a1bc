// Command passerelle runs the Passerelle placement backend and its tools.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// subcommands is every subcommand, in the order the usage lists them.
var subcommands = []command{
	{"serve", "run the service (HTTP API, projections)", serve},
	{"token", "print a signed bearer token: token --role ROLE [--subject ID] [--ttl 24h]", token},
	{"replay", "rebuild read models from the event log into fresh keys and swap them in", replay},
	{"seed", "fill an empty instance with a realistic campaign: seed --departement CODE… | --national [--scale F] [--until DATE] [--seed N]", seedCmd},
	{"bench", "measure each path against a baseline on a seeded instance and print their ratios", benchCmd},
	{"verify", "walk the event log and report the first broken link of its hash chain", verify},
	{"check", "read the event log and report every placement left unsettled and every broken invariant of seats, weeks and conventions", check},
	{"audit", "print a placement's history from the event log: audit application ID", audit},
	{"eventstore-server", "run an EventStoreDB-protocol server over an embedded store (tests and local development)", eventstoreServer},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop() // os.Exit skips deferred calls
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	i := slices.IndexFunc(subcommands, func(c command) bool { return c.name == args[0] })
	if i < 0 {
		fmt.Fprintf(stderr, "passerelle: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	if err := subcommands[i].run(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "passerelle %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Passerelle: placement backend for school observation internships.")
	fmt.Fprintln(w, "\nUsage: passerelle COMMAND [flags] [arguments]    (passerelle COMMAND --help for its flags)")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range subcommands {
		fmt.Fprintf(w, "  %-20s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nFlags may come before or after the arguments; -- ends the flags.")
	fmt.Fprintln(w, "Every flag can also be set by an environment variable PASSERELLE_<FLAG>, e.g. PASSERELLE_DATA_DIR.")
}

// flagSet builds a subcommand's flags; parse lets PASSERELLE_* set them.
func flagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: passerelle %s\n\n", synopsis)
		fs.PrintDefaults()
		fmt.Fprintln(stderr, "\nEach flag may be set by PASSERELLE_<FLAG> (upper case, '-' as '_'); a flag given on the command line wins.")
	}
	return fs
}

// parse applies PASSERELLE_* environment variables, then the command line,
// and returns its positional arguments, which must number nargs.
func parse(fs *flag.FlagSet, args []string, nargs int) ([]string, error) {
	if err := applyEnv(fs); err != nil {
		return nil, err
	}
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, err
	}
	if len(positional) != nargs {
		fs.Usage()
		if nargs == 0 {
			return nil, fmt.Errorf("unexpected argument %q", positional[0])
		}
		return nil, fmt.Errorf("expected %d arguments, got %d", nargs, len(positional))
	}
	return positional, nil
}

// applyEnv sets each flag from its PASSERELLE_* environment variable.
func applyEnv(fs *flag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := "PASSERELLE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok && err == nil {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s: %w", env, e)
			}
		}
	})
	return err
}

// parseInterspersed parses flags wherever they stand among the positional
// arguments: the flag package stops at the first positional one, so parsing
// resumes after each. A "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			break
		}
		positional, args = append(positional, rest[0]), rest[1:]
	}
	return positional, nil
}

// closing joins c's Close error to *err: a deferred close whose failure
// the command reports.
func closing(c io.Closer, err *error) {
	*err = errors.Join(*err, c.Close())
}
