package master_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/proto/calc"
)

// Bounds of the garbage run, per protocol.
const (
	garbageConns    = 50                      // garbage connections open at once
	garbageFor      = 2500 * time.Millisecond // how long they keep coming
	garbageDeadline = 3 * time.Second         // a garbage connection must be answered or closed within this
	validClients    = 3                       // well-behaved clients measuring latency meanwhile
	validP99        = 500 * time.Millisecond  // generous: two shared cores, the race detector
)

// attack is one kind of bad input. send returns the bytes to write; the
// client then half-closes and reads until the server closes. check judges
// what came back (nil: anything, as long as the server ends the connection
// in time).
type attack struct {
	name  string
	send  func(r *rand.Rand) []byte
	check func(sent, got []byte) error
}

// httpStatus wants one response with this status, then the close (the
// server answers bad input and closes).
func httpStatus(code int) func(sent, got []byte) error {
	return func(_, got []byte) error {
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(got)), nil)
		if err != nil {
			return fmt.Errorf("no HTTP response (%v) in %q", err, trim(got))
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != code || !resp.Close {
			return fmt.Errorf("got %d (close %v, body %q), want %d and the connection closed", resp.StatusCode, resp.Close, body, code)
		}
		return nil
	}
}

// httpResponses wants responses with these statuses, in order, and nothing
// after them (the client half-closed: a keep-alive connection then closes).
func httpResponses(codes ...int) func(sent, got []byte) error {
	return func(_, got []byte) error {
		br := bufio.NewReader(bytes.NewReader(got))
		for i, code := range codes {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				return fmt.Errorf("response %d: %v in %q", i+1, err, trim(got))
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != code {
				return fmt.Errorf("response %d: got %d, want %d", i+1, resp.StatusCode, code)
			}
		}
		if rest, _ := io.ReadAll(br); len(rest) > 0 {
			return fmt.Errorf("%q after the responses", trim(rest))
		}
		return nil
	}
}

// httpErrorOrNothing: random bytes may parse as anything, so the server may
// answer an error status or close without one (input it never saw whole),
// but never 2xx.
func httpErrorOrNothing(_, got []byte) error {
	if len(got) == 0 {
		return nil
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(got)), nil)
	if err != nil {
		return fmt.Errorf("not an HTTP response (%v): %q", err, trim(got))
	}
	if resp.StatusCode < 400 {
		return fmt.Errorf("got status %d for garbage", resp.StatusCode)
	}
	return nil
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n+8)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b[:n]
}

// bigBlock is 512 KiB of random bytes, made once.
var bigBlock = randomBytes(rand.New(rand.NewPCG(1, 2)), 512<<10)

func fixed(s string) func(*rand.Rand) []byte { return func(*rand.Rand) []byte { return []byte(s) } }

var httpAttacks = []attack{
	{"random bytes", func(r *rand.Rand) []byte { return randomBytes(r, 1+r.IntN(4096)) }, httpErrorOrNothing},
	{"NUL in the target", fixed("GET /a\x00b HTTP/1.1\r\nHost: t\r\n\r\n"), httpStatus(400)},
	{"NUL in a header value", fixed("GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n"), httpStatus(400)},
	{"NUL bytes only", fixed(strings.Repeat("\x00", 512)), httpStatus(400)},
	{"5000 header fields", fixed("GET / HTTP/1.1\r\nHost: t\r\n" + strings.Repeat("X-A: b\r\n", 5000) + "\r\n"), httpStatus(431)},
	{"100 KiB header line", fixed("GET / HTTP/1.1\r\nHost: t\r\nX-Long: " + strings.Repeat("a", 100<<10) + "\r\n\r\n"), httpStatus(431)},
	{"Content-Length past int64", fixed("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999999\r\n\r\n"), httpStatus(400)},
	{"Content-Length of a terabyte", fixed("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1099511627776\r\n\r\nxyz"), httpStatus(413)},
	{"negative Content-Length", fixed("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n"), httpStatus(400)},
	{"chunk size past uint64", fixed("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffffffffffff\r\nx\r\n0\r\n\r\n"), httpStatus(413)},
	{"chunk size not hex", fixed("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"), httpStatus(400)},
	{"Content-Length and chunked", fixed("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), httpStatus(400)},
	{"final coding not chunked", fixed("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n"), httpStatus(400)},
	{"unknown coding before chunked", fixed("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: br, chunked\r\n\r\n"), httpStatus(501)},
	{"HTTP/2.0", fixed("GET / HTTP/2.0\r\nHost: t\r\n\r\n"), httpStatus(505)},
	{"bare LF", fixed("GET / HTTP/1.1\nHost: t\n\n"), httpStatus(400)},
	{"1500 header fields within 8 KiB", fixed("GET / HTTP/1.1\r\nHost: t\r\n" + strings.Repeat("a:b\r\n", 1500) + "\r\n"), httpResponses(200)},
	{"a valid request, then garbage", fixed("GET / HTTP/1.1\r\nHost: t\r\n\r\n\x00\x01\xff garbage\r\n\r\n"), httpResponses(200, 400)},
	{"1000 one-byte chunks", fixed("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" +
		strings.Repeat("1;ext=\"x\"\r\nx\r\n", 1000) + "0\r\nTrailer: t\r\n\r\n"), httpResponses(200)},
	{"truncated head", func(r *rand.Rand) []byte {
		full := "GET /x HTTP/1.1\r\nHost: t\r\nX-A: b\r\n\r\n"
		return []byte(full[:r.IntN(len(full)-1)+1]) // then EOF: nothing to answer
	}, func(_, got []byte) error {
		if len(got) != 0 {
			if err := httpStatus(400)(nil, got); err != nil {
				return fmt.Errorf("a truncated head: %w", err)
			}
		}
		return nil
	}},
}

// echoBack wants exactly the bytes sent, then the close.
func echoBack(sent, got []byte) error {
	if !bytes.Equal(sent, got) {
		return fmt.Errorf("echoed %d bytes, sent %d (first difference at %d)", len(got), len(sent), firstDiff(sent, got))
	}
	return nil
}

var echoAttacks = []attack{
	{"random bytes", func(r *rand.Rand) []byte { return randomBytes(r, 1+r.IntN(16<<10)) }, echoBack},
	{"NUL bytes", func(r *rand.Rand) []byte { return make([]byte, 1+r.IntN(8<<10)) }, echoBack},
	// Past the loop's output high-water mark (256 KiB): the worker stops
	// reading until the echo drains, and still gives all of it back.
	{"512 KiB at once", func(*rand.Rand) []byte { return bigBlock }, echoBack},
	{"HTTP at the echo port", fixed("GET / HTTP/1.1\r\nHost: t\r\n\r\n"), echoBack},
}

// calcAnswers wants the answers to the frames before the first framing
// error (Process, the server's own core, run on what was sent), then the
// close: the reference is the package's pure function, the point here is
// that the worker behind the socket does the same and survives.
func calcAnswers(sent, got []byte) error {
	_, want, _ := calc.Process(sent, nil)
	if !bytes.Equal(got, want) {
		return fmt.Errorf("got %q, want %q", trim(got), trim(want))
	}
	return nil
}

// calcCode wants one answer with this code.
func calcCode(code calc.Code) func(sent, got []byte) error {
	return func(sent, got []byte) error {
		if want := calc.AppendResponse(nil, 0, code); !bytes.Equal(got, want) {
			return fmt.Errorf("got %q, want %q", trim(got), want)
		}
		return nil
	}
}

var calcAttacks = []attack{
	{"random bytes", func(r *rand.Rand) []byte { return randomBytes(r, 1+r.IntN(4096)) }, calcAnswers},
	{"NUL bytes", fixed(strings.Repeat("\x00", 100)), calcAnswers},
	{"length 4097", fixed("4097\r\n" + strings.Repeat("1", 4097) + "\r\n"), calcAnswers},
	{"length of 20 digits", fixed("99999999999999999999\r\n1 + 1\r\n"), calcAnswers},
	{"length 0", fixed("0\r\n\r\n"), calcAnswers},
	{"truncated frame", func(r *rand.Rand) []byte {
		full := "7\r\n10 + 20\r\n"
		return []byte(full[:r.IntN(len(full)-1)+1])
	}, calcAnswers},
	{"payload longer than its length", fixed("3\r\n1 + 2\r\n"), calcAnswers},
	{"valid frames then garbage", fixed("5\r\n1 + 2\r\n5\r\n3 * 4\r\n\xff\xfe\r\n"), calcAnswers},
	{"4096 bytes of garbage payload", func(r *rand.Rand) []byte {
		return calc.AppendRawRequest(nil, bytes.Repeat([]byte{'x'}, calc.MaxPayload))
	}, calcCode(calc.CodeMalformed)},
	{"operand past int64", fixed(string(calc.AppendRawRequest(nil, []byte("99999999999999999999999 + 1")))), calcCode(calc.CodeOverflow)},
	{"NUL in the payload", fixed("5\r\n1 \x00 2\r\n"), calcCode(calc.CodeMalformed)},
}

// TestGarbage starts the real binary once per protocol with two workers and
// throws bad input at it from many connections at once, while a few valid
// clients keep making requests: no worker may crash or restart, every valid
// request must succeed with a bounded p99 latency, and bad input must get
// the protocol's error (an HTTP status and a close; calc's error code or a
// close after the frames before the bad one) within garbageDeadline.
func TestGarbage(t *testing.T) {
	for _, tc := range []struct {
		proto   string
		attacks []attack
		valid   func(c net.Conn, br *bufio.Reader, r *rand.Rand) error
	}{
		{"http", httpAttacks, validHTTP},
		{"echo", echoAttacks, validEcho},
		{"calc", calcAttacks, validCalc},
	} {
		t.Run(tc.proto, func(t *testing.T) {
			s := startServer(t, 2, "--proto", tc.proto)
			before := s.waitReady(2)

			stop := make(chan struct{})
			var vwg sync.WaitGroup
			lat := make([][]time.Duration, validClients)
			verrs := make([]error, validClients)
			for i := 0; i < validClients; i++ {
				vwg.Add(1)
				go func() {
					defer vwg.Done()
					lat[i], verrs[i] = runValid(s.addr, tc.valid, uint64(i), stop)
				}()
			}

			counts := runGarbage(t, s.addr, tc.attacks)
			close(stop)
			vwg.Wait()

			var all []time.Duration
			for i := range lat {
				if verrs[i] != nil {
					t.Errorf("valid client %d: %v", i, verrs[i])
				}
				all = append(all, lat[i]...)
			}
			if len(all) == 0 {
				t.Fatal("the valid clients made no request")
			}
			slices.Sort(all)
			p50, p99 := all[len(all)/2], all[len(all)*99/100]
			t.Logf("%s: valid requests %d, p50 %v, p99 %v, max %v", tc.proto, len(all), p50, p99, all[len(all)-1])
			if p99 > validP99 {
				t.Errorf("valid p99 latency: got %v, want under %v", p99, validP99)
			}

			total, bad := 0, 0
			names := make([]string, 0, len(counts))
			for name := range counts {
				names = append(names, name)
			}
			sort.Strings(names)
			for _, name := range names {
				c := counts[name]
				total += c.conns
				bad += c.failed
				t.Logf("%s: %-32s %4d connections, %d failed, %d bytes sent", tc.proto, name, c.conns, c.failed, c.sent)
				for _, err := range c.errs {
					t.Errorf("%s: %s: %v", tc.proto, name, err)
				}
			}
			t.Logf("%s: %d garbage connections, %d failed", tc.proto, total, bad)
			if total < len(tc.attacks) {
				t.Errorf("only %d garbage connections, want every attack at least once", total)
			}

			// No worker crashed or was replaced.
			_, body := httpGet(t, "http://"+s.metricsAddr+"/metrics")
			for _, reason := range []string{"exited", "signaled", "hung"} {
				v, ok := sample(t, body, "prefork_worker_restarts_total", `{reason="`+reason+`"}`)
				if !ok || v != 0 {
					t.Errorf("prefork_worker_restarts_total{reason=%q}: got %v (present %v), want 0", reason, v, ok)
				}
			}
			if after := s.readyWorkers(); !maps.Equal(after, before) {
				t.Errorf("worker pids: got %v after the garbage, want %v (unchanged)", after, before)
			}
			if pids := s.workerPIDs(); len(pids) != 2 {
				t.Errorf("master's children: got %v, want the 2 workers", pids)
			}
		})
	}
}

type attackCount struct {
	conns, failed int
	sent          int64
	errs          []error // the first few
}

// runGarbage keeps garbageConns connections busy with the attacks, round
// robin, for garbageFor, and returns per attack what happened.
func runGarbage(t *testing.T, addr string, attacks []attack) map[string]*attackCount {
	t.Helper()
	var (
		mu     sync.Mutex
		counts = map[string]*attackCount{}
		next   atomic.Int64
		wg     sync.WaitGroup
	)
	for _, a := range attacks {
		counts[a.name] = &attackCount{}
	}
	end := time.Now().Add(garbageFor)
	for g := 0; g < garbageConns; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 0x9e3779b97f4a7c15))
			for time.Now().Before(end) {
				a := attacks[int(next.Add(1)-1)%len(attacks)]
				sent := a.send(r)
				err := throw(addr, sent, a.check)
				mu.Lock()
				c := counts[a.name]
				c.conns++
				c.sent += int64(len(sent))
				if err != nil {
					c.failed++
					if len(c.errs) < 3 {
						c.errs = append(c.errs, err)
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return counts
}

// throw sends one attack on a new connection, half-closes it and reads
// until the server closes it, all within garbageDeadline; the write runs
// beside the read, so a server that answers before reading everything (a
// 431 for a 100 KiB line) is seen answering.
func throw(addr string, sent []byte, check func(sent, got []byte) error) error {
	c, err := net.DialTimeout("tcp", addr, garbageDeadline)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(garbageDeadline))
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(sent)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		werr <- err
	}()
	got, rerr := io.ReadAll(c)
	_ = c.Close() // ends a write the server stopped reading
	wrote := <-werr
	if rerr != nil {
		if errors.Is(rerr, unix.ECONNRESET) && len(got) > 0 {
			rerr = nil // reset after its answer: the server had stopped reading what followed
		} else {
			return fmt.Errorf("after %d of its bytes were answered by %q: %v (write: %v)", len(sent), trim(got), rerr, wrote)
		}
	}
	if check != nil {
		if err := check(sent, got); err != nil {
			return fmt.Errorf("%w (sent %q)", err, trim(sent))
		}
	}
	return nil
}

// runValid makes requests on one keep-alive connection (a new one after
// every 50) until stop, timing each.
func runValid(addr string, valid func(net.Conn, *bufio.Reader, *rand.Rand) error, seed uint64, stop <-chan struct{}) ([]time.Duration, error) {
	r := rand.New(rand.NewPCG(seed, 42))
	var lat []time.Duration
	for {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return lat, fmt.Errorf("dial: %w", err)
		}
		br := bufio.NewReader(c)
		for i := 0; i < 50; i++ {
			select {
			case <-stop:
				c.Close()
				return lat, nil
			default:
			}
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			start := time.Now()
			if err := valid(c, br, r); err != nil {
				c.Close()
				return lat, fmt.Errorf("request %d: %w", len(lat)+1, err)
			}
			lat = append(lat, time.Since(start))
		}
		c.Close()
	}
}

func validHTTP(c net.Conn, br *bufio.Reader, r *rand.Rand) error {
	if _, err := io.WriteString(c, "GET /"+strconv.Itoa(r.IntN(1000))+" HTTP/1.1\r\nHost: t\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 || string(body) != "Hello, World!" {
		return fmt.Errorf("got %d %q, want 200 Hello, World!", resp.StatusCode, body)
	}
	return nil
}

func validEcho(c net.Conn, br *bufio.Reader, r *rand.Rand) error {
	msg := randomBytes(r, 1+r.IntN(512))
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(br, got); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo differs at byte %d", firstDiff(msg, got))
	}
	return nil
}

func validCalc(c net.Conn, br *bufio.Reader, r *rand.Rand) error {
	x, y := r.Int64N(1<<40)-1<<39, r.Int64N(1<<40)-1<<39
	if _, err := c.Write(calc.AppendRequest(nil, x, '+', y)); err != nil {
		return err
	}
	want := calc.AppendResponse(nil, x+y, calc.CodeOK)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(br, got); err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%d + %d: got %q, want %q", x, y, got, want)
	}
	return nil
}

func firstDiff(a, b []byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// trim shortens bytes for a message.
func trim(b []byte) []byte {
	if len(b) > 120 {
		return append(b[:120:120], "..."...)
	}
	return b
}
