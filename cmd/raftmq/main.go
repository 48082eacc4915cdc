// Command raftmq is the single static binary of the project: the namesrv, the
// broker, the admin tool and helpers are its subcommands. It holds flags and
// configuration only; all logic lives in the packages it calls.
package main

import (
	"fmt"
	"os"
	"sort"
)

// subcommand is one verb of the binary. run receives the arguments after the verb
// and returns the process exit code.
type subcommand struct {
	summary string
	run     func(args []string) int
}

// subcommands is filled by the init functions of the files beside this one, one
// file per verb, so that each verb's flags stay next to its code.
var subcommands = map[string]subcommand{}

func register(name, summary string, run func(args []string) int) {
	subcommands[name] = subcommand{summary: summary, run: run}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: raftmq <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(subcommands))
	for n := range subcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-12s %s\n", n, subcommands[n].summary)
	}
}

func main() {
	// Busybox style: a binary named mqnamesrv or mqbroker runs that verb.
	verb := ""
	switch base(os.Args[0]) {
	case "mqnamesrv":
		verb = "namesrv"
	case "mqbroker":
		verb = "broker"
	case "mqadmin":
		verb = "admin"
	}
	args := os.Args[1:]
	if verb == "" {
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			usage()
			os.Exit(2)
		}
		verb, args = args[0], args[1:]
	}
	cmd, ok := subcommands[verb]
	if !ok {
		fmt.Fprintf(os.Stderr, "raftmq: unknown command %q\n", verb)
		usage()
		os.Exit(2)
	}
	os.Exit(cmd.run(args))
}

func base(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}
