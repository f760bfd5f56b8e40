package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The results files scripts/bench writes in RESULTS-DIR, one line per run,
// tab-separated; the column numbers below count from 0.
//
//	keepalive.tsv, pipeline.tsv: server round req/s p50 p99 errors others'-CPU-% steal-% requests server-CPU-s
//	echo.tsv:   server round depth msgs/s p50 p99 others'-CPU-% steal-% msgs server-CPU-s
//	memory.tsv: server RSS-before-KiB RSS-after-KiB "ok=N failed=M"
//	syscalls.tsv: server depth requests total name calls name calls ... (by calls, descending)
//	balance.tsv:  mode source "count count ..."
//	adapter.tsv:  server round route req/s p50 p99 errors others'-CPU-% steal-% requests server-CPU-s
//	adapter-memory.tsv: server RSS-before-KiB RSS-after-KiB requests-in-flight "ok=N failed=M"
//	static.tsv:   server round file req/s p50 p99 errors others'-CPU-% steal-% requests server-CPU-s
//	              wrk-elapsed-s wrk-CPU-s file-bytes
//	modes-*.tsv:  the modes workload's (modes.go)
const (
	colServer = 0

	httpRPS, httpP50, httpP99, httpErrors, httpOther, httpSteal, httpRequests, httpCPU = 2, 3, 4, 5, 6, 7, 8, 9

	echoDepth, echoRate, echoP50, echoP99, echoOther, echoSteal, echoMsgs, echoCPU = 2, 3, 4, 5, 6, 7, 8, 9

	adRoute, adRPS, adP50, adP99, adErrors, adOther, adSteal, adRequests, adCPU = 2, 3, 4, 5, 6, 7, 8, 9, 10

	stFile, stRPS, stP50, stP99, stErrors, stOther, stSteal, stRequests, stCPU, stSecs, stClient, stSize = 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13
)

// adapterBase is the server the adapter table compares with: the same mux
// on net/http (scripts/nethttpmux).
const adapterBase = "nethttp-mux"

// staticBase is the server the static tables compare with: nginx serving
// the same directory (scripts/nginx/static.conf).
const staticBase = "nginx-static"

// The static workload's figures and the targets for it.
const (
	// staticLarge: from this size on, a file's table is in MB/s (body
	// bytes per second), below it in req/s.
	staticLarge = 64 << 10
	// wrkSaturated: the share of one core (wrk's CPU time over its run
	// time) from which wrk -t1 counts as saturating its core, the rate
	// being then wrk's more than the server's.
	wrkSaturated = 90.0
	// staticSmallTarget: every other server against nginx on a small
	// file, in req/s, or in rps/core when wrk saturates its core (in
	// either server's runs).
	staticSmallTarget = 1.10
	// staticLargeTarget: against nginx on a large file, in MB/s.
	staticLargeTarget = 1.00
)

// reportConfig is what the headings and tables need of the script's knobs.
type reportConfig struct {
	conns, duration, pipelineDepth, echoSize, idleConns, syscallSeconds int
	balanceWorkers, balanceConns, balanceConc, modesWorkers             int
	inflight, inflightMS                                                int
	httpServers, echoServers, adapterServers, staticServers             []string
	labels                                                              map[string]string
}

func (c *reportConfig) label(server string) string {
	if l, ok := c.labels[server]; ok {
		return l
	}
	return server
}

// table is a results file: its lines split at tabs.
type table [][]string

// readTable reads dir/name; a missing or empty file is an empty table.
func readTable(dir, name string) (table, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var t table
	for line := range strings.Lines(string(b)) {
		line = strings.TrimRight(line, "\r\n")
		if line != "" {
			t = append(t, strings.Split(line, "\t"))
		}
	}
	return t, nil
}

// where returns the rows whose column col is val.
func (t table) where(col int, val string) table {
	var out table
	for _, row := range t {
		if col < len(row) && row[col] == val {
			out = append(out, row)
		}
	}
	return out
}

// distinct returns the values of column col in the order they first appear.
func (t table) distinct(col int) []string {
	var out []string
	for _, row := range t {
		if col < len(row) && !slices.Contains(out, row[col]) {
			out = append(out, row[col])
		}
	}
	return out
}

// nums returns column col as numbers, leaving out what is not one (empty,
// "-" for a figure wrk did not print).
func (t table) nums(col int) []float64 {
	var out []float64
	for _, row := range t {
		if col < len(row) {
			if v, err := strconv.ParseFloat(row[col], 64); err == nil {
				out = append(out, v)
			}
		}
	}
	return out
}

// perCPU returns, row by row, column n divided by column cpu (CPU
// seconds): requests or messages per second of server CPU, "rps/core".
// Rows without a positive CPU time are left out.
func (t table) perCPU(n, cpu int) []float64 {
	var out []float64
	for _, row := range t {
		if n >= len(row) || cpu >= len(row) {
			continue
		}
		v, err1 := strconv.ParseFloat(row[n], 64)
		c, err2 := strconv.ParseFloat(row[cpu], 64)
		if err1 == nil && err2 == nil && c > 0 {
			out = append(out, v/c)
		}
	}
	return out
}

func sum(vs []float64) float64 {
	var s float64
	for _, v := range vs {
		s += v
	}
	return s
}

// pct formats the max of a CPU percentage column, "?" for none.
func pct(vs []float64) string { return maxOf(vs).or("?") + " %" }

// throughputTable prints the table of keepalive.tsv or pipeline.tsv.
func throughputTable(w io.Writer, c *reportConfig, t table, latency bool) {
	ng := medianOf(t.where(colServer, "nginx").nums(httpRPS))
	gn := medianOf(t.where(colServer, "gnet").nums(httpRPS))
	fl := medianOf(t.where(colServer, "floor").nums(httpRPS))
	flCPU := medianOf(t.where(colServer, "floor").perCPU(httpRequests, httpCPU))
	fmt.Fprintln(w, "| server | req/s (median) | vs nginx | vs gnet | vs floor | min – max over rounds | rps/core (median) | rps/core vs floor | p50 / p99 latency | errors | others' CPU (max) | steal (max) |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, s := range c.httpServers {
		rows := t.where(colServer, s)
		rps := rows.nums(httpRPS)
		med := medianOf(rps)
		perCore := medianOf(rows.perCPU(httpRequests, httpCPU))
		lat := us(medianOf(rows.nums(httpP50))) + " / " + us(medianOf(rows.nums(httpP99)))
		if !latency {
			lat = "n/a"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s – %s | %s | %s | %s | %s | %s | %s |\n",
			c.label(s), si(med), ratio(med, ng), ratio(med, gn), ratio(med, fl),
			si(minOf(rps)), si(maxOf(rps)), si(perCore), ratio(perCore, flCPU),
			lat, plain(sum(rows.nums(httpErrors))), pct(rows.nums(httpOther)), pct(rows.nums(httpSteal)))
	}
}

// echoTable prints the table of echo.tsv: 1, then 16 messages in flight.
func echoTable(w io.Writer, c *reportConfig, t table) {
	fmt.Fprintln(w, "| server | in flight per conn | msgs/s (median) | vs gnet | vs floor | min – max over rounds | msgs/s/core (median) | msgs/s/core vs floor | p50 / p99 latency | others' CPU (max) | steal (max) |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, d := range []string{"1", "16"} {
		td := t.where(echoDepth, d)
		gn := medianOf(td.where(colServer, "gnet-echo").nums(echoRate))
		fl := medianOf(td.where(colServer, "floor-echo").nums(echoRate))
		flCPU := medianOf(td.where(colServer, "floor-echo").perCPU(echoMsgs, echoCPU))
		for _, s := range c.echoServers {
			rows := td.where(colServer, s)
			rate := rows.nums(echoRate)
			med := medianOf(rate)
			perCore := medianOf(rows.perCPU(echoMsgs, echoCPU))
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s – %s | %s | %s | %s / %s | %s | %s |\n",
				c.label(s), d, si(med), ratio(med, gn), ratio(med, fl), si(minOf(rate)), si(maxOf(rate)),
				si(perCore), ratio(perCore, flCPU),
				us(medianOf(rows.nums(echoP50))), us(medianOf(rows.nums(echoP99))),
				pct(rows.nums(echoOther)), pct(rows.nums(echoSteal)))
		}
		fmt.Fprintf(w, "| nginx | %s | n/a: no echo in Debian's nginx | | | | | | | | |\n", d)
	}
}

func memoryTable(w io.Writer, c *reportConfig, t table) {
	fmt.Fprintf(w, "| server | RSS before | RSS with %d idle | KiB per connection | still open after |\n", c.idleConns)
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|")
	for _, row := range t {
		row = append(row, "", "", "", "")[:max(len(row), 4)]
		before, _ := strconv.ParseInt(row[1], 10, 64)
		after, _ := strconv.ParseInt(row[2], 10, 64)
		fmt.Fprintf(w, "| %s | %d MiB | %d MiB | %.2f | %s |\n", c.label(row[0]), before/1024, after/1024,
			float64(after-before)/float64(max(c.idleConns, 1)), strings.Join(row[3:], "\t"))
	}
}

// adapterTable prints the table of adapter.tsv: per route (in the order of
// the runs), every adapter server against the same mux on net/http.
func adapterTable(w io.Writer, c *reportConfig, t table) {
	fmt.Fprintln(w, "| server | route | req/s (median) | vs net/http | min – max over rounds | rps/core (median) | rps/core vs net/http | p50 / p99 latency | errors | others' CPU (max) | steal (max) |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, route := range t.distinct(adRoute) {
		tr := t.where(adRoute, route)
		base := medianOf(tr.where(colServer, adapterBase).nums(adRPS))
		baseCPU := medianOf(tr.where(colServer, adapterBase).perCPU(adRequests, adCPU))
		for _, s := range c.adapterServers {
			rows := tr.where(colServer, s)
			rps := rows.nums(adRPS)
			med := medianOf(rps)
			perCore := medianOf(rows.perCPU(adRequests, adCPU))
			fmt.Fprintf(w, "| %s | GET %s | %s | %s | %s – %s | %s | %s | %s / %s | %s | %s | %s |\n",
				c.label(s), route, fine(med), ratio(med, base), fine(minOf(rps)), fine(maxOf(rps)),
				si(perCore), ratio(perCore, baseCPU),
				us(medianOf(rows.nums(adP50))), us(medianOf(rows.nums(adP99))),
				plain(sum(rows.nums(adErrors))), pct(rows.nums(adOther)), pct(rows.nums(adSteal)))
		}
	}
}

// cell returns row[col] as a number; ok is false for what is not one.
func cell(row []string, col int) (float64, bool) {
	if col >= len(row) {
		return 0, false
	}
	v, err := strconv.ParseFloat(row[col], 64)
	return v, err == nil
}

// each returns f of every row, leaving out the rows it has no figure for.
func (t table) each(f func(row []string) (float64, bool)) []float64 {
	var out []float64
	for _, row := range t {
		if v, ok := f(row); ok {
			out = append(out, v)
		}
	}
	return out
}

// staticFigures are one server's runs on one file of static.tsv, run by run.
type staticFigures struct {
	rate    []float64 // req/s (wrk's), or MB/s of body bytes for a large file
	perCore []float64 // the same per second of server CPU
	wrkCPU  []float64 // wrk's CPU time over its run time, % of one core
}

// staticFigs computes the figures of rows (one server, one file): a large
// file's rate is requests × size / wrk's elapsed time, in MB/s (10⁶ bytes).
func staticFigs(rows table, large bool) staticFigures {
	var f staticFigures
	f.rate = rows.each(func(row []string) (float64, bool) {
		if !large {
			return cell(row, stRPS)
		}
		n, ok1 := cell(row, stRequests)
		size, ok2 := cell(row, stSize)
		secs, ok3 := cell(row, stSecs)
		return n * size / secs / 1e6, ok1 && ok2 && ok3 && secs > 0
	})
	f.perCore = rows.each(func(row []string) (float64, bool) {
		n, ok1 := cell(row, stRequests)
		cpu, ok2 := cell(row, stCPU)
		size, ok3 := cell(row, stSize)
		if !large {
			size, ok3 = 1, true
		}
		return n * size / cpu / rateUnit(large), ok1 && ok2 && ok3 && cpu > 0
	})
	f.wrkCPU = rows.each(func(row []string) (float64, bool) {
		c, ok1 := cell(row, stClient)
		secs, ok2 := cell(row, stSecs)
		return 100 * c / secs, ok1 && ok2 && secs > 0
	})
	return f
}

// rateUnit is what the static tables divide by: 10⁶ bytes (MB/s) for a
// large file, 1 request (req/s) for a small one.
func rateUnit(large bool) float64 {
	if large {
		return 1e6
	}
	return 1
}

// staticTarget says whether a server's figures meet the target
// against nginx's (base): on a large file MB/s ≥ staticLargeTarget ×
// nginx's; on a small one req/s ≥ staticSmallTarget × nginx's, or, when
// wrk saturated its core (median ≥ wrkSaturated % in either server's runs),
// rps/core ≥ staticSmallTarget × nginx's.
func staticTarget(s, base staticFigures, large bool) string {
	rate, baseRate := medianOf(s.rate), medianOf(base.rate)
	if !rate.ok || !baseRate.ok || baseRate.v == 0 {
		return "n/a (no figures)"
	}
	r := rate.v / baseRate.v
	pc, basePC := medianOf(s.perCore), medianOf(base.perCore)
	w, bw := medianOf(s.wrkCPU), medianOf(base.wrkCPU)
	if large {
		return fmt.Sprintf("%s (MB/s %.2f× nginx's, target ≥ %.2f×; per core %s; wrk at %s / %s of its core (this server / nginx))",
			metStr(r >= staticLargeTarget), r, staticLargeTarget, ratio(pc, basePC), pct1(w), pct1(bw))
	}
	sat := (w.ok && w.v >= wrkSaturated) || (bw.ok && bw.v >= wrkSaturated)
	why := fmt.Sprintf("req/s %.2f×, rps/core %s nginx's, target ≥ %.2f×; wrk at %s / %s of its core (this server / nginx): ",
		r, ratio(pc, basePC), staticSmallTarget, pct1(w), pct1(bw))
	if !sat {
		return fmt.Sprintf("%s (%snot saturated, so req/s counts)", metStr(r >= staticSmallTarget), why)
	}
	met := r >= staticSmallTarget || (pc.ok && basePC.ok && basePC.v > 0 && pc.v/basePC.v >= staticSmallTarget)
	return fmt.Sprintf("%s (%ssaturated, so rps/core counts too)", metStr(met), why)
}

func metStr(met bool) string {
	if met {
		return "**met**"
	}
	return "**not met**"
}

// pct1 formats a median share of a core: "76 %", "n/a".
func pct1(o opt) string {
	return o.format(func(v float64) string { return fmt.Sprintf("%.0f %%", v) }, "n/a")
}

// staticTables prints, per file of static.tsv (in the order of the runs), a
// table of every static server against nginx and the target line of every
// other server.
func staticTables(w io.Writer, c *reportConfig, t table) {
	for _, file := range t.distinct(stFile) {
		tf := t.where(stFile, file)
		size, _ := cell(tf[0], stSize)
		large := size >= staticLarge
		fmt.Fprintf(w, "\n#### GET /%s (%s bytes)\n\n", file, plain(size))
		if large {
			fmt.Fprintln(w, "| server | MB/s (median) | vs nginx | min – max over rounds | MB/s per core (median) | per core vs nginx | p50 / p99 latency | wrk CPU (median) | errors | others' CPU (max) | steal (max) |")
		} else {
			fmt.Fprintln(w, "| server | req/s (median) | vs nginx | min – max over rounds | rps/core (median) | rps/core vs nginx | p50 / p99 latency | wrk CPU (median) | errors | others' CPU (max) | steal (max) |")
		}
		fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
		rate := si
		if large {
			rate = fine
		}
		base := staticFigs(tf.where(colServer, staticBase), large)
		baseRate, basePC := medianOf(base.rate), medianOf(base.perCore)
		for _, s := range c.staticServers {
			rows := tf.where(colServer, s)
			f := staticFigs(rows, large)
			med, pc := medianOf(f.rate), medianOf(f.perCore)
			fmt.Fprintf(w, "| %s | %s | %s | %s – %s | %s | %s | %s / %s | %s | %s | %s | %s |\n",
				c.label(s), rate(med), ratio(med, baseRate), rate(minOf(f.rate)), rate(maxOf(f.rate)),
				rate(pc), ratio(pc, basePC), us(medianOf(rows.nums(stP50))), us(medianOf(rows.nums(stP99))),
				pct1(medianOf(f.wrkCPU)), plain(sum(rows.nums(stErrors))), pct(rows.nums(stOther)), pct(rows.nums(stSteal)))
		}
		fmt.Fprintln(w)
		for _, s := range c.staticServers {
			if s != staticBase {
				fmt.Fprintf(w, "Target, %s: %s.\n", c.label(s), staticTarget(staticFigs(tf.where(colServer, s), large), base, large))
			}
		}
	}
}

// fine formats a rate like si, but in full below 10,000 (6312, not 6.3k):
// the sleeping route's rates are all near 6,400.
func fine(o opt) string {
	if o.ok && o.v < 1e4 {
		return strconv.FormatInt(int64(o.v+0.5), 10)
	}
	return si(o)
}

// adapterMemoryRow formats one line of adapter-memory.tsv: server
// RSS-before RSS-after requests-in-flight responses; the KiB per request is
// (after-before)/requests.
func adapterMemoryRow(c *reportConfig, row []string) string {
	row = append(row, "", "", "", "", "")[:max(len(row), 5)]
	before, _ := strconv.ParseInt(row[1], 10, 64)
	after, _ := strconv.ParseInt(row[2], 10, 64)
	n, err := strconv.ParseInt(row[3], 10, 64)
	if err != nil || n < 1 {
		n = int64(max(c.inflight, 1))
	}
	return fmt.Sprintf("| %s | %.1f MiB | %.1f MiB | %.2f | %s |", c.label(row[0]), float64(before)/1024, float64(after)/1024,
		float64(after-before)/float64(n), strings.Join(row[4:], "\t"))
}

// runtimeCalls are the Go runtime's own syscalls, which follow wall-clock
// time more than requests ("without runtime calls" leaves them out).
var runtimeCalls = regexp.MustCompile(`^(futex|nanosleep|clock_nanosleep|sched_yield|tgkill|tkill|getpid|gettid|rt_sig.*|sigaltstack|madvise|mmap|munmap|mprotect|clock_gettime)$`)

// syscallRow formats one line of syscalls.tsv: server depth requests total
// name calls name calls ...
func syscallRow(c *reportConfig, row []string) string {
	row = append(row, "", "", "", "")[:max(len(row), 4)]
	requests, _ := strconv.ParseInt(row[2], 10, 64)
	total, _ := strconv.ParseFloat(row[3], 64)
	n := float64(max(requests, 1))
	var top []string
	var io float64
	for i := 4; i+1 < len(row); i += 2 {
		calls, _ := strconv.ParseFloat(row[i+1], 64)
		if len(top) < 5 {
			top = append(top, fmt.Sprintf("%s %.2f", row[i], calls/n))
		}
		if !runtimeCalls.MatchString(row[i]) {
			io += calls
		}
	}
	workload := "keep-alive"
	if row[1] != "1" {
		workload = "pipelined ×" + strconv.Itoa(c.pipelineDepth)
	}
	return fmt.Sprintf("| %s | %s | %d | %.2f | %.2f | %s |", c.label(row[0]), workload, requests, total/n, io/n, strings.Join(top, ", "))
}

// balanceRow formats one line of balance.tsv: mode source counts.
func balanceRow(row []string) string {
	row = append(row, "", "", "")[:max(len(row), 3)]
	mode, source, counts := row[0], row[1], strings.Fields(row[2])
	if len(counts) == 0 {
		return fmt.Sprintf("| %s | %s | | |", mode, source)
	}
	var vs []float64
	for _, s := range counts {
		v, _ := strconv.ParseFloat(s, 64)
		vs = append(vs, v)
	}
	lo, hi, _ := minMax(vs)
	spread := "∞"
	if lo != 0 {
		spread = fmt.Sprintf("%.2f", hi/lo)
	}
	return fmt.Sprintf("| %s | %s | %s | %s |", mode, source, strings.Join(counts, " / "), spread)
}

// report prints everything after the environment lines scripts/bench prints
// itself (revision, machine, versions, load average).
func report(w io.Writer, c *reportConfig, dir string) error {
	tabs := map[string]table{}
	for _, name := range []string{"keepalive", "pipeline", "echo", "memory", "syscalls", "balance", "adapter", "adapter-memory", "static",
		"modes-balance", "modes-uneven", "modes-cost"} {
		t, err := readTable(dir, name+".tsv")
		if err != nil {
			return err
		}
		tabs[name] = t
	}
	var other, steal []float64
	for _, name := range []string{"keepalive", "pipeline"} {
		other = append(other, tabs[name].nums(httpOther)...)
		steal = append(steal, tabs[name].nums(httpSteal)...)
	}
	other = append(other, tabs["echo"].nums(echoOther)...)
	steal = append(steal, tabs["echo"].nums(echoSteal)...)
	other = append(other, tabs["adapter"].nums(adOther)...)
	steal = append(steal, tabs["adapter"].nums(adSteal)...)
	other = append(other, tabs["static"].nums(stOther)...)
	steal = append(steal, tabs["static"].nums(stSteal)...)
	other = append(other, tabs["modes-cost"].nums(mcOther)...)
	steal = append(steal, tabs["modes-cost"].nums(mcSteal)...)
	if len(other) > 0 {
		fmt.Fprintln(w, "During the throughput runs, in % of all CPUs: CPU used by other processes and kernel threads")
		fmt.Fprintf(w, "median %s %%, max %s %%; steal time (the hypervisor running\n", medianOf(other).or(""), maxOf(other).or(""))
		fmt.Fprintf(w, "something else) median %s %%, max %s %%.\n", medianOf(steal).or(""), maxOf(steal).or(""))
		fmt.Fprintln(w, "rps/core (msgs/s/core): requests (messages) the server completed per second of CPU its processes")
		fmt.Fprintln(w, "used during the run (utime+stime of its whole process tree), the median over rounds.")
	}
	if len(tabs["keepalive"]) > 0 {
		fmt.Fprintf(w, "\n### 1. HTTP keep-alive, wrk -t1 -c%d -d%ds\n\n", c.conns, c.duration)
		fmt.Fprintf(w, "Latencies are wrk's, after its coordinated-omission correction.\n\n")
		throughputTable(w, c, tabs["keepalive"], true)
	}
	if len(tabs["pipeline"]) > 0 {
		fmt.Fprintf(w, "\n### 2. HTTP pipelined, %d requests per write (scripts/pipeline.lua), wrk -t1 -c%d -d%ds\n\n", c.pipelineDepth, c.conns, c.duration)
		fmt.Fprintln(w, "No latency here: wrk corrects its histogram for coordinated omission with the mean interval")
		fmt.Fprintf(w, "between responses on a connection, 1/%d of a batch's round trip when pipelining, and adds\n", c.pipelineDepth)
		fmt.Fprintln(w, "samples below the recorded minimum, which its percentiles never reach (p90 and p99 come out")
		fmt.Fprintf(w, "as 0 in short runs). Section 3 has latencies with messages in flight.\n\n")
		throughputTable(w, c, tabs["pipeline"], false)
	}
	if len(tabs["echo"]) > 0 {
		fmt.Fprintf(w, "\n### 3. Echo, %d-byte messages, %d connections (scripts/echoload, every byte verified)\n\n", c.echoSize, c.conns)
		echoTable(w, c, tabs["echo"])
	}
	if len(tabs["memory"]) > 0 {
		fmt.Fprintf(w, "\n### 4. Memory per idle keep-alive connection (%d connections, one GET each, RSS of the whole process tree)\n\n", c.idleConns)
		memoryTable(w, c, tabs["memory"])
	}
	if len(tabs["syscalls"]) > 0 {
		fmt.Fprintf(w, "\n### 5. Syscalls per request (strace -c -f on the whole process tree, wrk -t1 -c%d -d%ds)\n\n", c.conns, c.syscallSeconds)
		fmt.Fprintln(w, "The second figure leaves out the Go runtime's own calls (futex, nanosleep, sched_yield, signals, memory")
		fmt.Fprintf(w, "management), which follow wall-clock time more than requests and so grow with strace's slow-down.\n\n")
		fmt.Fprintln(w, "| server | workload | requests | syscalls / request | without runtime calls | top syscalls per request |")
		fmt.Fprintln(w, "|---|---|--:|--:|--:|---|")
		for _, row := range tabs["syscalls"] {
			fmt.Fprintln(w, syscallRow(c, row))
		}
	}
	if len(tabs["balance"]) > 0 {
		fmt.Fprintf(w, "\n### 6. Accept balance: prefork --workers %d, %d new connections (%d at a time, one GET each, then close)\n\n",
			c.balanceWorkers, c.balanceConns, c.balanceConc)
		fmt.Fprintln(w, "| mode | source | accepted per worker (slot 0, 1, …) | max / min |")
		fmt.Fprintln(w, "|---|---|---|--:|")
		for _, row := range tabs["balance"] {
			fmt.Fprintln(w, balanceRow(row))
		}
	}
	if len(tabs["adapter"]) > 0 || len(tabs["adapter-memory"]) > 0 {
		fmt.Fprintln(w, "\n### 7. net/http adapter: the same http.ServeMux (examples/nethttp/mux) under prefork (httpd.NetHTTP) and on net/http")
	}
	if len(tabs["adapter"]) > 0 {
		fmt.Fprintf(w, "\nwrk -t1 -c%d -d%ds, keep-alive. GET /slow?ms=10 is a plain 10 ms time.Sleep in the handler: %d connections\n", c.conns, c.duration, c.conns)
		fmt.Fprintf(w, "bound it near %s req/s. Latencies are wrk's, after its coordinated-omission correction.\n\n", si(some(float64(c.conns)*100)))
		adapterTable(w, c, tabs["adapter"])
	}
	if len(tabs["adapter-memory"]) > 0 {
		fmt.Fprintf(w, "\nMemory per in-flight request: a fresh server; %d connections, one GET /slow?ms=%d each (scripts/inflight);\n", c.inflight, c.inflightMS)
		fmt.Fprintln(w, "RSS of the whole process tree before, and 1 s after the last request was written, all of them still")
		fmt.Fprintln(w, "sleeping; (after − before) / requests. A request's connection is in the figure too (section 4 has that")
		fmt.Fprintf(w, "alone, for an idle one). Responses: every one checked for 200 \"slept %d\".\n\n", c.inflightMS)
		fmt.Fprintf(w, "| server | RSS before | RSS with %d in flight | KiB per in-flight request | responses |\n", c.inflight)
		fmt.Fprintln(w, "|---|--:|--:|--:|---|")
		for _, row := range tabs["adapter-memory"] {
			fmt.Fprintln(w, adapterMemoryRow(c, row))
		}
	}
	if len(tabs["static"]) > 0 {
		fmt.Fprintf(w, "\n### 8. Static files: prefork serve --root against nginx (sendfile, tcp_nopush, open_file_cache), wrk -t1 -c%d -d%ds\n\n", c.conns, c.duration)
		fmt.Fprintln(w, "The same files of random bytes in one directory; every server's GET of each file was checked first")
		fmt.Fprintln(w, "for 200, its length and its bytes. MB/s counts body bytes (a MB is 10⁶ bytes): requests × file size /")
		fmt.Fprintln(w, "wrk's elapsed time, not wrk's Transfer/sec (heads included, in MiB). Per core: per second of the")
		fmt.Fprintf(w, "server's CPU. wrk CPU: its CPU time over its run time, in %% of one core; from %.0f %% on, wrk's one\n", wrkSaturated)
		fmt.Fprintln(w, "thread is what bounds the rate. Latencies are wrk's, after its coordinated-omission correction.")
		staticTables(w, c, tabs["static"])
	}
	modesSection(w, c, tabs["modes-balance"], tabs["modes-uneven"], tabs["modes-cost"])
	return nil
}

// labelFlags collects -label KEY=TEXT.
type labelFlags map[string]string

func (l labelFlags) String() string { return fmt.Sprint(map[string]string(l)) }
func (l labelFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q: want KEY=TEXT", s)
	}
	l[k] = v
	return nil
}

func list(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func cmdReport(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	c := reportConfig{labels: labelFlags{}}
	fs.IntVar(&c.conns, "conns", 64, "wrk -c and echo connections")
	fs.IntVar(&c.duration, "duration", 4, "seconds per throughput run")
	fs.IntVar(&c.pipelineDepth, "pipeline-depth", 16, "requests per write in the pipelined workload")
	fs.IntVar(&c.echoSize, "echo-size", 128, "bytes per echo message")
	fs.IntVar(&c.idleConns, "idle-conns", 5000, "connections of the memory workload")
	fs.IntVar(&c.syscallSeconds, "syscall-seconds", 3, "seconds of wrk under strace")
	fs.IntVar(&c.balanceWorkers, "balance-workers", 4, "workers of the balance workload")
	fs.IntVar(&c.balanceConns, "balance-conns", 2000, "connections of the balance workload")
	fs.IntVar(&c.balanceConc, "balance-conc", 8, "connections at a time in the balance workload")
	fs.IntVar(&c.modesWorkers, "modes-workers", 4, "workers of the modes workload")
	httpServers := fs.String("http", "prefork,nginx,gnet,fasthttp,nethttp,floor", "HTTP servers, in table order")
	echoServers := fs.String("echo", "prefork-echo,gnet-echo,floor-echo", "echo servers, in table order")
	adapterServers := fs.String("adapter", "prefork-nethttp,"+adapterBase, "servers of the adapter workload, in table order")
	staticServers := fs.String("static", "prefork-static,"+staticBase, "servers of the static workload, in table order")
	fs.IntVar(&c.inflight, "inflight", 2000, "requests in flight at once in the adapter's memory workload")
	fs.IntVar(&c.inflightMS, "inflight-ms", 5000, "how long each of them sleeps, ms")
	fs.Var(labelFlags(c.labels), "label", "KEY=TEXT: the name a table shows for server KEY (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("want RESULTS-DIR")
	}
	c.httpServers, c.echoServers, c.adapterServers = list(*httpServers), list(*echoServers), list(*adapterServers)
	c.staticServers = list(*staticServers)
	bw := bufio.NewWriter(stdout)
	if err := report(bw, &c, fs.Arg(0)); err != nil {
		return err
	}
	return bw.Flush()
}
