package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// straceRow is one line of an `strace -c -U name,calls,errors` summary.
type straceRow struct {
	name          string
	calls, errors int64
}

// parseStraceSummary reads an `strace -c -U name,calls,errors` summary:
//
//	syscall              calls    errors
//	---------------- --------- ---------
//	openat                  39        19
//	mmap                    30
//	---------------- --------- ---------
//	total                  148        26
//
// It returns the syscall rows in their order and the total (calls of the
// "total" line; the rows' sum if there is none).
func parseStraceSummary(r io.Reader) (rows []straceRow, total straceRow, err error) {
	var sum straceRow
	haveTotal := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "-") || f[0] == "syscall" {
			continue
		}
		row := straceRow{name: f[0]}
		if row.calls, err = strconv.ParseInt(f[1], 10, 64); err == nil && len(f) >= 3 {
			row.errors, err = strconv.ParseInt(f[2], 10, 64)
		}
		if err != nil {
			return nil, total, fmt.Errorf("strace summary line %q: %v", sc.Text(), err)
		}
		if row.name == "total" {
			total, haveTotal = row, true
			continue
		}
		rows = append(rows, row)
		sum.calls += row.calls
		sum.errors += row.errors
	}
	if err := sc.Err(); err != nil {
		return nil, total, err
	}
	if !haveTotal {
		total = straceRow{name: "total", calls: sum.calls, errors: sum.errors}
	}
	return rows, total, nil
}

// successfulAccepts counts the accept and accept4 calls of a summary that
// did not fail: the connections accepted.
func successfulAccepts(rows []straceRow) int64 {
	var n int64
	for _, r := range rows {
		if r.name == "accept" || r.name == "accept4" {
			n += r.calls - r.errors
		}
	}
	return n
}

func openSummary(path string) ([]straceRow, straceRow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, straceRow{}, err
	}
	defer f.Close()
	return parseStraceSummary(f)
}

func cmdSyscalls(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("syscalls", flag.ContinueOnError)
	server := fs.String("server", "", "server key")
	depth := fs.Int("depth", 1, "requests per write")
	requests := fs.Int64("requests", 0, "requests wrk completed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *server == "" {
		return errors.New("want -server S -depth D -requests N STRACE-FILE")
	}
	rows, total, err := openSummary(fs.Arg(0))
	if err != nil {
		return err
	}
	out := []string{*server, strconv.Itoa(*depth), strconv.FormatInt(*requests, 10), strconv.FormatInt(total.calls, 10)}
	for _, r := range rows {
		out = append(out, r.name, strconv.FormatInt(r.calls, 10))
	}
	_, err = fmt.Fprintln(stdout, strings.Join(out, "\t"))
	return err
}

func cmdAccepts(args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("want STRACE-FILE")
	}
	rows, _, err := openSummary(args[0])
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, successfulAccepts(rows))
	return err
}

// perWorker sums the samples of metric in a Prometheus text exposition by
// the value of their worker label; samples without one are left out.
func perWorker(r io.Reader, metric string) (map[string]float64, error) {
	sums := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, metric+"{")
		if !ok {
			continue
		}
		labels, rest, err := parseLabels(rest)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", line, err)
		}
		w, ok := labels["worker"]
		if !ok {
			continue
		}
		f := strings.Fields(rest) // value [timestamp]
		if len(f) == 0 {
			return nil, fmt.Errorf("%q: no value", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", line, err)
		}
		sums[w] += v
	}
	return sums, sc.Err()
}

// parseLabels parses `name="value",...}` (what follows the '{' of a
// sample) and returns the labels and what follows the '}'.
func parseLabels(s string) (map[string]string, string, error) {
	labels := map[string]string{}
	for {
		s = strings.TrimLeft(s, " ")
		if rest, ok := strings.CutPrefix(s, "}"); ok {
			return labels, rest, nil
		}
		name, rest, ok := strings.Cut(s, "=")
		if !ok || !strings.HasPrefix(rest, `"`) {
			return nil, "", errors.New(`want name="value"`)
		}
		var val strings.Builder
		i := 1
		for ; i < len(rest) && rest[i] != '"'; i++ {
			if rest[i] == '\\' && i+1 < len(rest) {
				i++
				if rest[i] == 'n' {
					val.WriteByte('\n')
					continue
				}
			}
			val.WriteByte(rest[i])
		}
		if i == len(rest) {
			return nil, "", errors.New("unterminated label value")
		}
		labels[strings.TrimSpace(name)] = val.String()
		s = strings.TrimLeft(rest[i+1:], " ")
		s = strings.TrimPrefix(s, ",")
	}
}

// acceptedDelta returns, for worker slots 0..workers-1, the increase of
// the per-worker sums from before to after; nil if after has none.
func acceptedDelta(before, after map[string]float64, workers int) []int64 {
	if len(after) == 0 {
		return nil
	}
	out := make([]int64, workers)
	for w := range out {
		k := strconv.Itoa(w)
		out[w] = int64(after[k] - before[k])
	}
	return out
}

const acceptedMetric = "prefork_connections_accepted_total"

func readPerWorker(path string) (map[string]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := perWorker(f, acceptedMetric)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return m, nil
}

func cmdAccepted(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("accepted", flag.ContinueOnError)
	workers := fs.Int("workers", 1, "worker slots")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 || *workers < 1 {
		return errors.New("want -workers N BEFORE AFTER (two /metrics bodies)")
	}
	before, err := readPerWorker(fs.Arg(0))
	if err != nil {
		return err
	}
	after, err := readPerWorker(fs.Arg(1))
	if err != nil {
		return err
	}
	counts := acceptedDelta(before, after, *workers)
	if counts == nil {
		return nil
	}
	out := make([]string, len(counts))
	for i, c := range counts {
		out[i] = strconv.FormatInt(c, 10)
	}
	_, err = fmt.Fprintln(stdout, strings.Join(out, " "))
	return err
}
