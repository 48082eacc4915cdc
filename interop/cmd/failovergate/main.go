// Command failovergate checks a failover summary (the JSON file the compose or
// process-cluster failover run writes) against issue 10's targets: it prints the
// figures and every missed target, and exits 1 when any is missed, so `make
// failover-bench` is usable as a gate. The tests themselves assert no speed.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/raftmq/raftmq/interop/internal/failover"
)

func main() {
	tg := failover.DefaultTargets
	flag.Float64Var(&tg.ResumeMedian, "resume-median", tg.ResumeMedian, "leader kill: median resume gap limit, seconds")
	flag.Float64Var(&tg.ResumeMax, "resume-max", tg.ResumeMax, "leader kill: worst resume gap limit, seconds")
	flag.Float64Var(&tg.ConsumerGap, "consumer-gap", tg.ConsumerGap, "leader/follower kill: longest consumer gap limit, seconds")
	flag.Float64Var(&tg.FailWindowMax, "fail-window", tg.FailWindowMax, "follower kill: longest window of failed sends, seconds")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: failovergate [flags] summary.json...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	failed := false
	for _, path := range flag.Args() {
		s, err := failover.ReadSummary(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "failovergate:", err)
			os.Exit(2)
		}
		s.WriteTable(os.Stdout)
		misses := s.Misses(tg)
		if len(misses) == 0 {
			fmt.Printf("%s: every issue 10 target met\n", path)
			continue
		}
		failed = true
		fmt.Printf("%s: %d issue 10 targets missed:\n", path, len(misses))
		for _, m := range misses {
			fmt.Println("  " + m)
		}
	}
	if failed {
		os.Exit(1)
	}
}
