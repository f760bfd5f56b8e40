package main

import (
	"fmt"
	"slices"
	"strconv"
)

// median of vs: the middle value, or the mean of the two middle ones for an
// even count; ok is false for none.
func median(vs []float64) (m float64, ok bool) {
	if len(vs) == 0 {
		return 0, false
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2], true
	}
	return (s[n/2-1] + s[n/2]) / 2, true
}

// minMax of vs; ok is false for none.
func minMax(vs []float64) (lo, hi float64, ok bool) {
	if len(vs) == 0 {
		return 0, 0, false
	}
	return slices.Min(vs), slices.Max(vs), true
}

// opt is a figure that may be missing (no runs, a field wrk did not print).
type opt struct {
	v  float64
	ok bool
}

// some is a figure that is there.
func some(v float64) opt { return opt{v, true} }

// medianOf, minOf and maxOf are median and minMax as opts.
func medianOf(vs []float64) opt { m, ok := median(vs); return opt{m, ok} }
func minOf(vs []float64) opt    { lo, _, ok := minMax(vs); return opt{lo, ok} }
func maxOf(vs []float64) opt    { _, hi, ok := minMax(vs); return opt{hi, ok} }

// plain formats v in as few digits as it takes: 3, 2.5, 0.64.
func plain(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// or formats o with plain, or as missing if it is not there.
func (o opt) or(missing string) string { return o.format(plain, missing) }

// format formats o with f, or as missing if it is not there.
func (o opt) format(f func(float64) string, missing string) string {
	if !o.ok {
		return missing
	}
	return f(o.v)
}

// si formats a rate: 127612 -> 127.6k, 1460000 -> 1.46M, 999.7 -> 999.
func si(o opt) string {
	switch {
	case !o.ok:
		return "n/a"
	case o.v >= 1e6:
		return fmt.Sprintf("%.2fM", o.v/1e6)
	case o.v >= 1e3:
		return fmt.Sprintf("%.1fk", o.v/1e3)
	}
	return strconv.FormatInt(int64(o.v), 10)
}

// ratio formats a/b as "1.23×"; n/a when either is missing or b is 0.
func ratio(a, b opt) string {
	if !a.ok || !b.ok || b.v == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", a.v/b.v)
}

// us formats a latency in µs: 87 -> "87 µs", 1234 -> "1.23 ms".
func us(o opt) string {
	switch {
	case !o.ok:
		return "n/a"
	case o.v >= 1000:
		return fmt.Sprintf("%.2f ms", o.v/1000)
	}
	return fmt.Sprintf("%.0f µs", o.v)
}
