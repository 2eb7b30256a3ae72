// Command freqkv runs LLaMA-family models on any GPU through WebGPU, with a
// KV cache kept at a fixed size by frequency-domain compression (FreqKV).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"
)

// usageError marks errors that exit with status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

type command struct {
	name    string
	args    string
	summary string
	run     func(args []string) error
	// ownSignals: the command handles SIGINT and SIGTERM itself (serve
	// drains, chat stops a reply) instead of the default of signals.go.
	ownSignals bool
}

var commands []command

func register(c command) { commands = append(commands, c) }

func mainUsage() {
	sort.Slice(commands, func(a, b int) bool { return commands[a].name < commands[b].name })
	fmt.Fprintf(os.Stderr, `freqkv runs LLaMA-family models on any GPU through WebGPU, keeping the KV cache
at a fixed size by compressing it in the frequency domain (FreqKV).

Usage: freqkv COMMAND [flags]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(os.Stderr, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'freqkv COMMAND --help' for a command's flags.\n")
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		mainUsage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name == args[0] {
			if !c.ownSignals {
				handleSignals()
			}
			err := c.run(args[1:])
			if ferr := stdout.flush(); err == nil {
				err = ferr
			}
			switch {
			case err == nil:
				return 0
			case errors.Is(err, pflag.ErrHelp):
				return 0
			case errors.As(err, new(usageError)):
				fmt.Fprintf(os.Stderr, "freqkv %s: %v\n", c.name, err)
				return 2
			default:
				fmt.Fprintf(os.Stderr, "freqkv %s: %v\n", c.name, oneLine(err))
				return 1
			}
		}
	}
	fmt.Fprintf(os.Stderr, "freqkv: unknown command %q; run 'freqkv --help' for the list\n", args[0])
	return 2
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// newFlags makes a flag set whose parse errors are usage errors.
func newFlags(name, args, summary string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: freqkv %s %s\n\n%s\n\nFlags:\n%s", name, args, summary, fs.FlagUsages())
	}
	return fs
}

// parse parses flags, turning errors into usage errors.
func parse(fs *pflag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard) // errors are reported once, as one line, by run
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return usagef("%v (see --help)", err)
	}
	return nil
}
