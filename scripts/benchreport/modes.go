package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The modes workload of scripts/bench: prefork's three listener modes side
// by side. Three helpers for the script (uneven, proc-ticks, proc-cpu) and
// the section's tables.

// ---------------------------------------------------------------- uneven ----

// unevenResult is what `benchreport uneven` measured.
type unevenResult struct {
	requests   int64
	errors     int64
	seconds    float64
	p50, p99   float64 // µs
	heavyPer   float64 // requests per heavy connection
	lightPer   float64 // requests per light connection
	heavyConns int
}

func (r unevenResult) String() string {
	ratio := 0.0
	if r.lightPer > 0 {
		ratio = r.heavyPer / r.lightPer
	}
	return fmt.Sprintf("%.0f %.0f %.0f %d %.2f", float64(r.requests)/r.seconds, r.p50, r.p99, r.errors, ratio)
}

// unevenLoad runs conns keep-alive connections to addr for d: the first
// heavy of them send GET / back to back; each of the others sends its next
// request only while it has sent fewer than 1/ratio of what the average
// heavy connection has (a pacer hands it a token then, checking every
// millisecond), so the ratio holds whatever the latency and however late a
// sleeping goroutine wakes on a loaded machine. Latency: from the write of a
// request to the end of its response.
func unevenLoad(addr string, conns, heavy, ratio int, d time.Duration) (unevenResult, error) {
	type connStats struct {
		lat    []time.Duration
		errors int64
	}
	stats := make([]connStats, conns)
	start := time.Now()
	end := start.Add(d)
	var heavyDone atomic.Int64
	tokens := make([]chan struct{}, conns)
	for i := heavy; i < conns; i++ {
		tokens[i] = make(chan struct{}, 1)
	}
	done := make(chan struct{})
	var pacer sync.WaitGroup
	if heavy > 0 && heavy < conns {
		pacer.Add(1)
		go func() {
			defer pacer.Done()
			issued := make([]int64, conns)
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for {
				allowed := heavyDone.Load()/int64(heavy*ratio) + 1
				for i := heavy; i < conns; i++ {
					if issued[i] < allowed {
						select {
						case tokens[i] <- struct{}{}:
							issued[i]++
						default: // its last token is not used yet
						}
					}
				}
				select {
				case <-tick.C:
				case <-done:
					return
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			st := &stats[i]
			var c net.Conn
			var br *bufio.Reader
			timeout := time.NewTimer(time.Until(end))
			defer timeout.Stop()
		requests:
			for time.Now().Before(end) {
				if tokens[i] != nil && heavy > 0 {
					select {
					case <-tokens[i]:
					case <-timeout.C:
						break requests
					}
				}
				if c == nil {
					var err error
					if c, err = net.DialTimeout("tcp", addr, 5*time.Second); err != nil {
						st.errors++
						time.Sleep(10 * time.Millisecond)
						continue
					}
					br = bufio.NewReader(c)
				}
				t0 := time.Now()
				if err := unevenGet(c, br); err != nil {
					st.errors++
					c.Close()
					c = nil
					continue
				}
				st.lat = append(st.lat, time.Since(t0))
				if i < heavy {
					heavyDone.Add(1)
				}
			}
			if c != nil {
				c.Close()
			}
		}(i)
	}
	wg.Wait()
	close(done)
	pacer.Wait()
	secs := time.Since(start).Seconds()
	var all []float64
	var res unevenResult
	var heavyReqs, lightReqs int64
	for i, st := range stats {
		for _, l := range st.lat {
			all = append(all, float64(l)/float64(time.Microsecond))
		}
		res.errors += st.errors
		if i < heavy {
			heavyReqs += int64(len(st.lat))
		} else {
			lightReqs += int64(len(st.lat))
		}
	}
	if len(all) == 0 {
		return res, errors.New("no request completed")
	}
	slices.Sort(all)
	res.requests = int64(len(all))
	res.seconds = secs
	res.p50, res.p99 = quantile(all, 0.50), quantile(all, 0.99)
	res.heavyConns = heavy
	if heavy > 0 {
		res.heavyPer = float64(heavyReqs) / float64(heavy)
	}
	if conns > heavy {
		res.lightPer = float64(lightReqs) / float64(conns-heavy)
	}
	return res, nil
}

// quantile of sorted vs (nearest rank).
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

const unevenRequest = "GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: benchreport-uneven\r\n\r\n"

func unevenGet(c net.Conn, br *bufio.Reader) error {
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	if _, err := io.WriteString(c, unevenRequest); err != nil {
		return err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}

func cmdUneven(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("uneven", flag.ContinueOnError)
	addr := fs.String("addr", "", "server host:port")
	conns := fs.Int("conns", 64, "keep-alive connections")
	heavy := fs.Int("heavy", 16, "of them, the heavy ones (sending back to back)")
	ratio := fs.Int("ratio", 10, "a heavy connection's requests per light connection's")
	d := fs.Duration("d", 4*time.Second, "how long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr == "" || *conns < 1 || *heavy < 0 || *heavy > *conns || *ratio < 1 || *d <= 0 {
		return errors.New("want -addr HOST:PORT, -conns ≥ 1, 0 ≤ -heavy ≤ -conns, -ratio ≥ 1, -d > 0")
	}
	r, err := unevenLoad(*addr, *conns, *heavy, *ratio, *d)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, r)
	return err
}

// ------------------------------------------------------------ proc ticks ----

// cmdProcTicks prints ROOT's and each direct child's utime+stime, in clock
// ticks, as "PID:TICKS ..." on one line, ROOT first, the children by pid.
func cmdProcTicks(args []string, stdout io.Writer) error {
	root, err := rootArg(args, 1, "ROOT")
	if err != nil {
		return err
	}
	procs, err := readProcs(procDir)
	if err != nil {
		return err
	}
	st, ok := procs[root]
	if !ok {
		return fmt.Errorf("no process %d", root)
	}
	fields := []string{fmt.Sprintf("%d:%d", root, st.UTime+st.STime)}
	var kids []int
	for pid, p := range procs {
		if p.PPID == root {
			kids = append(kids, pid)
		}
	}
	slices.Sort(kids)
	for _, pid := range kids {
		fields = append(fields, fmt.Sprintf("%d:%d", pid, procs[pid].UTime+procs[pid].STime))
	}
	_, err = fmt.Fprintln(stdout, strings.Join(fields, " "))
	return err
}

// parseTicks reads a proc-ticks line: pids in order and ticks by pid.
func parseTicks(line string) ([]int, map[int]int64, error) {
	var order []int
	ticks := map[int]int64{}
	for _, f := range strings.Fields(line) {
		p, t, ok := strings.Cut(f, ":")
		pid, err1 := strconv.Atoi(p)
		n, err2 := strconv.ParseInt(t, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, nil, fmt.Errorf("%q: want PID:TICKS", f)
		}
		order = append(order, pid)
		ticks[pid] = n
	}
	if len(order) == 0 {
		return nil, nil, errors.New("empty proc-ticks line")
	}
	return order, ticks, nil
}

// procCPU returns the CPU seconds between two proc-ticks lines: the root's
// first, then each child present in both, in the order of end.
func procCPU(begin, end string, hz int) ([]float64, error) {
	_, a, err := parseTicks(begin)
	if err != nil {
		return nil, err
	}
	order, b, err := parseTicks(end)
	if err != nil {
		return nil, err
	}
	var out []float64
	for i, pid := range order {
		before, ok := a[pid]
		if !ok {
			if i == 0 {
				return nil, fmt.Errorf("root %d not in the first line", pid)
			}
			continue // a process started during the run: not comparable
		}
		out = append(out, float64(b[pid]-before)/float64(hz))
	}
	return out, nil
}

// cmdProcCPU prints "ROOT_S CHILD_S ..." from two proc-ticks lines.
func cmdProcCPU(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("proc-cpu", flag.ContinueOnError)
	hz := fs.Int("hz", 100, "clock ticks per second of /proc (getconf CLK_TCK)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 || *hz <= 0 {
		return errors.New("want -hz HZ BEGIN END (two proc-ticks lines)")
	}
	secs, err := procCPU(fs.Arg(0), fs.Arg(1), *hz)
	if err != nil {
		return err
	}
	out := make([]string, len(secs))
	for i, s := range secs {
		out[i] = strconv.FormatFloat(s, 'f', 2, 64)
	}
	_, err = fmt.Fprintln(stdout, strings.Join(out, " "))
	return err
}

// ---------------------------------------------------------------- tables ----

// The modes workload's results files (columns from 0):
//
//	modes-balance.tsv: mode connections "open open ..." (prefork_connections_active by slot)
//	modes-uneven.tsv:  mode round req/s p50 p99 errors heavy/light "master-s worker-s worker-s ..."
//	modes-cost.tsv:    mode round workload req/s p50 p99 errors others'-CPU-% steal-% requests
//	                   server-CPU-s master-CPU-s
const (
	mbMode, mbConns, mbCounts                                                  = 0, 1, 2
	muRPS, muP50, muP99, muErrors, muRatio, muCPU                              = 2, 3, 4, 5, 6, 7
	mcWorkload, mcRPS, mcP50, mcP99, mcErrors, mcOther, mcSteal, mcReqs, mcCPU = 2, 3, 4, 5, 6, 7, 8, 9, 10
	mcMaster                                                                   = 11
)

// fieldsOf reads the space-separated numbers of cell col.
func fieldsOf(row []string, col int) []float64 {
	if col >= len(row) {
		return nil
	}
	var out []float64
	for _, f := range strings.Fields(row[col]) {
		if v, err := strconv.ParseFloat(f, 64); err == nil {
			out = append(out, v)
		}
	}
	return out
}

func modesBalanceTable(w io.Writer, modes []string, t table) {
	fmt.Fprintln(w, "| mode | connections | open per worker (slot 0, 1, …) | max − min |")
	fmt.Fprintln(w, "|---|--:|---|--:|")
	for _, conns := range t.distinct(mbConns) {
		for _, m := range modes {
			for _, row := range t.where(mbMode, m).where(mbConns, conns) {
				vs := fieldsOf(row, mbCounts)
				spread := "?"
				if lo, hi, ok := minMax(vs); ok {
					spread = plain(hi - lo)
				}
				counts := ""
				if len(row) > mbCounts {
					counts = strings.Join(strings.Fields(row[mbCounts]), " / ")
				}
				fmt.Fprintf(w, "| %s | %s | %s | %s |\n", m, conns, counts, spread)
			}
		}
	}
}

func modesUnevenTable(w io.Writer, modes []string, t table) {
	fmt.Fprintln(w, "| mode | req/s | p50 | p99 | errors | heavy / light requests | worker CPU max / min | master CPU |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|")
	for _, m := range modes {
		rows := t.where(mbMode, m)
		if len(rows) == 0 {
			continue
		}
		var spreads, masters []float64
		for _, row := range rows {
			cpu := fieldsOf(row, muCPU)
			if len(cpu) < 2 {
				continue
			}
			masters = append(masters, cpu[0])
			switch lo, hi, _ := minMax(cpu[1:]); {
			case lo > 0:
				spreads = append(spreads, hi/lo)
			case hi > 0:
				spreads = append(spreads, math.Inf(1)) // a worker did nothing
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", m,
			si(medianOf(rows.nums(muRPS))), us(medianOf(rows.nums(muP50))), us(medianOf(rows.nums(muP99))),
			maxOf(rows.nums(muErrors)).or("?"), medianOf(rows.nums(muRatio)).format(func(v float64) string { return fmt.Sprintf("%.1f", v) }, "?"),
			medianOf(spreads).format(ratioText, "?"),
			medianOf(masters).format(func(v float64) string { return fmt.Sprintf("%.2f s", v) }, "?"))
	}
}

// ratioText formats a max/min ratio; ∞ when the min was 0.
func ratioText(v float64) string {
	if math.IsInf(v, 1) {
		return "∞"
	}
	return fmt.Sprintf("%.2f", v)
}

func modesCostTable(w io.Writer, modes []string, t table) {
	fmt.Fprintln(w, "| workload | mode | req/s | rps/core | p50 | p99 | errors | master's share of the server's CPU |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|")
	for _, wl := range []string{"close", "keepalive"} {
		name := map[string]string{"close": "new connection per request", "keepalive": "keep-alive"}[wl]
		for _, m := range modes {
			rows := t.where(mbMode, m).where(mcWorkload, wl)
			if len(rows) == 0 {
				continue
			}
			var share []float64
			for _, row := range rows {
				total, ok1 := cell(row, mcCPU)
				master, ok2 := cell(row, mcMaster)
				if ok1 && ok2 && total > 0 {
					share = append(share, 100*master/total)
				}
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", name, m,
				si(medianOf(rows.nums(mcRPS))), si(medianOf(rows.perCPU(mcReqs, mcCPU))),
				us(medianOf(rows.nums(mcP50))), us(medianOf(rows.nums(mcP99))), maxOf(rows.nums(mcErrors)).or("?"),
				medianOf(share).format(func(v float64) string { return fmt.Sprintf("%.1f %%", v) }, "?"))
		}
	}
}

// modesSection prints section 9 if the modes workload ran.
func modesSection(w io.Writer, c *reportConfig, bal, unev, cost table) {
	if len(bal)+len(unev)+len(cost) == 0 {
		return
	}
	modes := []string{"reuseport", "shared", "handoff"}
	fmt.Fprintf(w, "\n### 9. Listener modes: prefork --workers %d in reuseport, shared and handoff mode\n", c.modesWorkers)
	if len(bal) > 0 {
		fmt.Fprintln(w, "\nBalance of long-lived connections: a fresh server per mode and size; scripts/idleconns opens the")
		fmt.Fprintln(w, "connections all at once, one GET each, and holds them; open connections per worker from /metrics")
		fmt.Fprintln(w, "(prefork_connections_active by slot).")
		fmt.Fprintln(w)
		modesBalanceTable(w, modes, bal)
	}
	if len(unev) > 0 {
		fmt.Fprintf(w, "\nUneven work: %d keep-alive connections (benchreport uneven), a quarter of them sending back to back,\n", c.conns)
		fmt.Fprintln(w, "the others paced to a tenth of a heavy connection's requests (the heavy / light column says what came of it);")
		fmt.Fprintln(w, "the CPU seconds of each worker over the run, max / min; p50 and p99 over all requests, measured by the")
		fmt.Fprintln(w, "client from write to the end of the response (Go, no coordinated-omission correction).")
		fmt.Fprintln(w)
		modesUnevenTable(w, modes, unev)
	}
	if len(cost) > 0 {
		fmt.Fprintf(w, "\nCost: wrk -t1 -c%d -d%ds, with -H 'Connection: close' (a new connection per request: the acceptor's\n", c.conns, c.duration)
		fmt.Fprintln(w, "work in handoff mode) and keep-alive; the master's CPU time over the whole tree's.")
		fmt.Fprintln(w)
		modesCostTable(w, modes, cost)
	}
}

// ---------------------------------------------------------------- active ----

const activeMetric = "prefork_connections_active"

// cmdActive prints prefork_connections_active for worker slots 0..N-1 of a
// /metrics body, space-separated (0 for a slot without the series).
func cmdActive(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("active", flag.ContinueOnError)
	workers := fs.Int("workers", 1, "worker slots")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *workers < 1 {
		return errors.New("want -workers N METRICS-FILE")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	by, err := perWorker(f, activeMetric)
	if err != nil {
		return err
	}
	if len(by) == 0 {
		return fmt.Errorf("%s: no %s", fs.Arg(0), activeMetric)
	}
	out := make([]string, *workers)
	for k := range out {
		out[k] = strconv.FormatFloat(by[strconv.Itoa(k)], 'f', -1, 64)
	}
	_, err = fmt.Fprintln(stdout, strings.Join(out, " "))
	return err
}
