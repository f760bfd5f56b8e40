// Command benchreport holds the statistics, parsing and report of
// scripts/bench (standard library only, part of the product module). The
// script starts and stops the servers and the load generators; it hands their
// output to one of these subcommands and keeps one line per run in the TSV
// files of $RUN/results, from which `benchreport report` prints the tables.
//
//	benchreport wrk < WRK-OUTPUT
//	    "RPS REQUESTS P50 P99 ERRORS SECONDS": req/s (rounded), requests
//	    completed, p50 and p99 in µs ("-" when wrk printed none), non-2xx
//	    responses + socket errors, and how long wrk ran (its "in 4.00s"; 0 if
//	    it did not say). Exits 1 if there is no req/s or request count.
//	benchreport kv KEY... < key=value-LINE
//	    the values of KEY... (echoload's msgs_per_sec=N p50_us=N ...), in order.
//	benchreport pids ROOT
//	    ROOT and its descendants (from the ppid of /proc/*/stat), one a line.
//	benchreport rss ROOT
//	    VmRSS summed over the process tree of ROOT, in KiB.
//	benchreport cpu-snap ROOT TIMES-FILE
//	    one line: wall clock, /proc/stat busy and steal ticks, utime+stime
//	    ticks of the process tree of ROOT, and the reaped children's CPU
//	    seconds from the output of bash's `times` in TIMES-FILE.
//	benchreport cpu-delta -hz HZ -ncpu N BEGIN END
//	    "OTHER_PCT STEAL_PCT SERVER_CPU_SECONDS CLIENT_CPU_SECONDS" between two
//	    cpu-snap lines (the client: the load generator, the reaped children).
//	benchreport syscalls -server S -depth D -requests N STRACE-FILE
//	    the results line of an `strace -c -U name,calls,errors -S calls` summary:
//	    S D N TOTAL NAME CALLS NAME CALLS ... (tab-separated, total left out of the pairs).
//	benchreport accepts STRACE-FILE
//	    successful accept/accept4 calls in an `strace -c -U name,calls,errors` summary.
//	benchreport accepted -workers N BEFORE AFTER
//	    per worker slot 0..N-1, the increase of prefork_connections_accepted_total
//	    (summed over the other labels) between two /metrics bodies; nothing
//	    if AFTER has no such series.
//	benchreport active -workers N METRICS-FILE
//	    prefork_connections_active of worker slots 0..N-1 in a /metrics body.
//	benchreport uneven -addr HOST:PORT [-conns 64 -heavy 16 -ratio 10 -d 4s]
//	    a load generator for the modes workload: -conns keep-alive connections
//	    of GET /, the first -heavy back to back, each of the others paced to
//	    1/ratio of the requests of the average heavy one; prints
//	    "RPS P50 P99 ERRORS HEAVY/LIGHT" (µs; requests per heavy connection
//	    over requests per light one).
//	benchreport proc-ticks ROOT
//	    "PID:TICKS ...": utime+stime of ROOT and of each of its children.
//	benchreport proc-cpu -hz HZ BEGIN END
//	    "ROOT_S CHILD_S ...": the CPU seconds between two proc-ticks lines
//	    (children present in both only).
//	benchreport report [flags] RESULTS-DIR
//	    the markdown tables of the TSV files in RESULTS-DIR (benchreport report -h).
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `usage: benchreport wrk | kv KEY... | pids ROOT | rss ROOT | cpu-snap ROOT TIMES-FILE |
       cpu-delta -hz HZ -ncpu N BEGIN END | syscalls -server S -depth D -requests N FILE |
       accepts FILE | accepted -workers N BEFORE AFTER | active -workers N FILE |
       uneven -addr A [flags] |
       proc-ticks ROOT | proc-cpu -hz HZ BEGIN END | report [flags] DIR
(the doc comment of scripts/benchreport/main.go describes each)`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "benchreport %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// run runs subcommand cmd with args; stdin and stdout are the subcommand's.
func run(cmd string, args []string, stdin io.Reader, stdout io.Writer) error {
	switch cmd {
	case "wrk":
		return cmdWrk(args, stdin, stdout)
	case "kv":
		return cmdKV(args, stdin, stdout)
	case "pids":
		return cmdPids(args, stdout)
	case "rss":
		return cmdRSS(args, stdout)
	case "cpu-snap":
		return cmdCPUSnap(args, stdout)
	case "cpu-delta":
		return cmdCPUDelta(args, stdout)
	case "syscalls":
		return cmdSyscalls(args, stdout)
	case "accepts":
		return cmdAccepts(args, stdout)
	case "accepted":
		return cmdAccepted(args, stdout)
	case "active":
		return cmdActive(args, stdout)
	case "uneven":
		return cmdUneven(args, stdout)
	case "proc-ticks":
		return cmdProcTicks(args, stdout)
	case "proc-cpu":
		return cmdProcCPU(args, stdout)
	case "report":
		return cmdReport(args, stdout)
	case "-h", "--help", "help":
		_, err := fmt.Fprintln(stdout, usage)
		return err
	}
	return fmt.Errorf("unknown subcommand\n%s", usage)
}
