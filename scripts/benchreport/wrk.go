package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// wrkResult is what scripts/bench takes from wrk's output.
type wrkResult struct {
	RPS      float64 // Requests/sec
	Requests int64   // "N requests in ..."
	Seconds  float64 // "... in 4.00s": how long wrk ran (0 if it did not say)
	P50, P99 opt     // µs, from --latency's distribution
	Errors   int64   // non-2xx/3xx responses + socket errors (connect, read, write, timeout)
}

// parseWrk reads the output of wrk --latency:
//
//	  Latency Distribution
//	     50%  512.00us
//	     99%    1.20ms
//	  1234567 requests in 4.00s, 150.70MB read
//	  Socket errors: connect 0, read 12, write 0, timeout 3
//	  Non-2xx or 3xx responses: 5
//	Requests/sec: 308641.75
func parseWrk(r io.Reader) (wrkResult, error) {
	var res wrkResult
	var haveRPS, haveReqs bool
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		var err error
		switch {
		case f[0] == "Requests/sec:" && len(f) >= 2:
			res.RPS, err = strconv.ParseFloat(f[1], 64)
			haveRPS = err == nil
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			res.Requests, err = strconv.ParseInt(f[0], 10, 64)
			haveReqs = err == nil
			if err == nil && len(f) >= 4 {
				var v float64
				if v, err = wrkMicros(strings.TrimSuffix(f[3], ",")); err == nil {
					res.Seconds = v / 1e6
				}
			}
		case (f[0] == "50%" || f[0] == "99%") && len(f) >= 2:
			var v float64
			if v, err = wrkMicros(f[1]); err == nil {
				if f[0] == "50%" {
					res.P50 = some(v)
				} else {
					res.P99 = some(v)
				}
			}
		case f[0] == "Non-2xx": // Non-2xx or 3xx responses: N
			var n int64
			if n, err = strconv.ParseInt(f[len(f)-1], 10, 64); err == nil {
				res.Errors += n
			}
		case f[0] == "Socket" && len(f) >= 2 && f[1] == "errors:":
			// connect N, read N, write N, timeout N
			for i := 3; i < len(f); i += 2 {
				var n int64
				if n, err = strconv.ParseInt(strings.TrimSuffix(f[i], ","), 10, 64); err != nil {
					break
				}
				res.Errors += n
			}
		}
		if err != nil {
			return res, fmt.Errorf("line %q: %v", strings.TrimSpace(line), err)
		}
	}
	if err := sc.Err(); err != nil {
		return res, err
	}
	if !haveRPS || !haveReqs {
		return res, errors.New("no Requests/sec or no request count in wrk's output")
	}
	return res, nil
}

// wrkMicros converts one of wrk's latency figures (12.3us, 1.2ms, 2.0s,
// 1.5m, 1.0h) to µs.
func wrkMicros(s string) (float64, error) {
	units := []struct {
		suffix string
		us     float64
	}{{"us", 1}, {"ms", 1e3}, {"s", 1e6}, {"m", 60e6}, {"h", 3600e6}}
	for _, u := range units {
		if num, found := strings.CutSuffix(s, u.suffix); found {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("latency %q: %v", s, err)
			}
			return v * u.us, nil
		}
	}
	return 0, fmt.Errorf("latency %q: no unit (us, ms, s, m, h)", s)
}

// dash formats an optional figure as an integer, "-" when missing, for the
// space-separated lines the script reads with `read`.
func dash(o opt) string {
	return o.format(func(v float64) string { return fmt.Sprintf("%.0f", v) }, "-")
}

func cmdWrk(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) != 0 {
		return errors.New("no arguments: wrk's output on stdin")
	}
	res, err := parseWrk(stdin)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%.0f %d %s %s %d %s\n", res.RPS, res.Requests, dash(res.P50), dash(res.P99), res.Errors,
		plain(res.Seconds))
	return err
}

// parseKV reads key=value fields (separated by blanks, over any number of
// lines) into a map; a field without '=' is an error.
func parseKV(r io.Reader) (map[string]string, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	kv := map[string]string{}
	for _, f := range strings.Fields(string(b)) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("field %q is not key=value", f)
		}
		kv[k] = v
	}
	return kv, nil
}

func cmdKV(keys []string, stdin io.Reader, stdout io.Writer) error {
	if len(keys) == 0 {
		return errors.New("which keys?")
	}
	kv, err := parseKV(stdin)
	if err != nil {
		return err
	}
	vals := make([]string, len(keys))
	for i, k := range keys {
		v, ok := kv[k]
		if !ok || v == "" {
			return fmt.Errorf("no %s= in the input", k)
		}
		vals[i] = v
	}
	_, err = fmt.Fprintln(stdout, strings.Join(vals, " "))
	return err
}
