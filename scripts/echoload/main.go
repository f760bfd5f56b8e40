// Command echoload is the echo load generator of scripts/bench. It is part of
// the product module but uses the standard library only.
//
// It opens -conns connections to an echo server, then for -d runs a closed
// loop on each: write -depth messages of -size bytes in one write, read all of
// them back, verify every byte (content and order), repeat. The latency of a
// message is the time from the write that carried it to the read that
// returned its last byte. It prints one line of key=value pairs:
//
//	msgs=... secs=... msgs_per_sec=... p50_us=... p99_us=... max_us=... conns=... depth=... size=...
//
// and exits 1 if a connection failed or a byte came back wrong.
package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"math/bits"
	"net"
	"os"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:7000", "echo server address")
	conns := flag.Int("conns", 64, "connections")
	size := flag.Int("size", 128, "message size in bytes (at least 16)")
	depth := flag.Int("depth", 1, "messages in flight per connection (written together, then read back)")
	dur := flag.Duration("d", 5*time.Second, "how long to run")
	flag.Parse()
	if *size < 16 || *conns < 1 || *depth < 1 {
		fmt.Fprintln(os.Stderr, "echoload: need -size >= 16, -conns >= 1, -depth >= 1")
		os.Exit(2)
	}

	cs := make([]net.Conn, *conns)
	for i := range cs {
		c, err := net.DialTimeout("tcp", *addr, 5*time.Second)
		if err != nil {
			fmt.Fprintf(os.Stderr, "echoload: dial %d: %v\n", i, err)
			os.Exit(1)
		}
		cs[i] = c
	}

	results := make([]result, *conns)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(*dur)
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = run(c, uint64(i), *size, *depth, deadline)
			c.Close()
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()

	var total hist
	var msgs uint64
	failed := false
	for i, r := range results {
		if r.err != nil {
			fmt.Fprintf(os.Stderr, "echoload: conn %d: %v\n", i, r.err)
			failed = true
		}
		msgs += r.msgs
		total.merge(&r.h)
	}
	fmt.Printf("msgs=%d secs=%.3f msgs_per_sec=%.0f p50_us=%.1f p99_us=%.1f max_us=%.1f conns=%d depth=%d size=%d\n",
		msgs, secs, float64(msgs)/secs, total.quantile(0.50)/1e3, total.quantile(0.99)/1e3, float64(total.max)/1e3,
		*conns, *depth, *size)
	if failed {
		os.Exit(1)
	}
}

type result struct {
	msgs uint64
	h    hist
	err  error
}

// run is one connection's closed loop.
func run(c net.Conn, id uint64, size, depth int, deadline time.Time) (r result) {
	// Bound every I/O: a server that stops answering fails the run instead
	// of hanging it.
	if err := c.SetDeadline(deadline.Add(10 * time.Second)); err != nil {
		r.err = err
		return r
	}
	wbuf := make([]byte, size*depth)
	rbuf := make([]byte, size*depth)
	want := make([]byte, size)
	var seq uint64
	for time.Now().Before(deadline) {
		for i := 0; i < depth; i++ {
			fill(wbuf[i*size:(i+1)*size], id, seq+uint64(i))
		}
		t0 := time.Now()
		if _, err := c.Write(wbuf); err != nil {
			r.err = fmt.Errorf("write: %w", err)
			return r
		}
		got, done := 0, 0
		for done < depth {
			n, err := c.Read(rbuf[got:])
			now := time.Now()
			got += n
			for (done+1)*size <= got {
				fill(want, id, seq+uint64(done))
				if m := rbuf[done*size : (done+1)*size]; !bytes.Equal(m, want) {
					off := 0
					for m[off] == want[off] {
						off++
					}
					r.err = fmt.Errorf("message %d: byte %d is %#x, want %#x", seq+uint64(done), off, m[off], want[off])
					return r
				}
				r.h.record(now.Sub(t0).Nanoseconds())
				done++
				r.msgs++
			}
			if err != nil && done < depth {
				r.err = fmt.Errorf("read after %d of %d bytes: %w", got, len(rbuf), err)
				return r
			}
		}
		seq += uint64(depth)
	}
	return r
}

// fill writes message seq of connection id: the pair in the first 16 bytes,
// then a pseudo-random stream derived from it, so a message that comes back
// from another connection, out of order or altered fails the comparison.
func fill(b []byte, id, seq uint64) {
	binary.LittleEndian.PutUint64(b[0:], id)
	binary.LittleEndian.PutUint64(b[8:], seq)
	x := (id<<40^seq)*0x9E3779B97F4A7C15 | 1
	i := 16
	for ; i+8 <= len(b); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		binary.LittleEndian.PutUint64(b[i:], x)
	}
	for ; i < len(b); i++ {
		b[i] = byte(x >> (8 * (i % 8)))
	}
}

// hist is a log-linear latency histogram in nanoseconds: exact below 128 ns,
// then 64 buckets per power of two (relative error under 1.6 %).
type hist struct {
	counts [64*64 + 128]uint64
	n      uint64
	max    int64
}

func bucket(v int64) int {
	if v < 128 {
		if v < 0 {
			v = 0
		}
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - 7
	return shift*64 + int(uint64(v)>>shift)
}

// lower returns the smallest value in bucket i.
func lower(i int) float64 {
	if i < 128 {
		return float64(i)
	}
	shift := i/64 - 1
	return float64(uint64(i-shift*64) << shift)
}

func (h *hist) record(v int64) {
	h.counts[bucket(v)]++
	h.n++
	if v > h.max {
		h.max = v
	}
}

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	if o.max > h.max {
		h.max = o.max
	}
}

// quantile returns the midpoint of the bucket that holds quantile q.
func (h *hist) quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n-1)) + 1
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			if i+1 < len(h.counts) {
				return (lower(i) + lower(i+1)) / 2
			}
			return lower(i)
		}
	}
	return float64(h.max)
}
