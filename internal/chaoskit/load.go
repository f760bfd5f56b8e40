package chaoskit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// LoadOptions shape a Load. Zero values take the defaults in brackets.
type LoadOptions struct {
	Addr string // the server, host:port
	// NewConns goroutines each make one request per new connection
	// (Connection: close), one after the other.
	NewConns int
	// KeepAlive goroutines each hold one keep-alive connection and make
	// PerConn requests on it [100], then close it and dial another; a
	// response with Connection: close also ends the connection (not a
	// failure).
	KeepAlive int
	PerConn   int
	// Gap is the mean pause of a goroutine between two requests, uniform in
	// [0, 2·Gap) [0: none]. It bounds the load and leaves keep-alive
	// connections idle between requests, as real clients do.
	Gap time.Duration
	// Timeout bounds each request: the dial, and the write and read of one
	// request [10s].
	Timeout time.Duration
	// Body, if set, is the response body every request must get (with a
	// 200); otherwise any 200 passes.
	Body []byte
}

// Failure is one failed request.
type Failure struct {
	KeepAlive bool   // made by a keep-alive goroutine (else a new-connection one)
	Port      uint16 // the connection's client port; 0 if the dial failed
	// Dialed is when the connection's dial began, At when the request
	// failed.
	Dialed, At time.Time
	Nth        int    // the request's number on its connection, from 1
	Got        int    // response bytes received before the failure
	Class      string // what failed: "dial: refused", "read: EOF before response", ...
	Err        error
}

// Reused reports whether the request was not the first on its connection:
// a keep-alive connection that had already been answered.
func (f Failure) Reused() bool { return f.Nth > 1 }

// maxFailures bounds the failures a Load keeps (it counts them all).
const maxFailures = 100_000

// Load is a running load (StartLoad); Stop ends it.
type Load struct {
	o    LoadOptions
	stop chan struct{}
	wg   sync.WaitGroup

	requests, ok, failed atomic.Int64

	mu        sync.Mutex
	failures  []Failure
	latencies []time.Duration // of the successful requests
}

// StartLoad starts the goroutines of o.
func StartLoad(o LoadOptions) *Load {
	if o.PerConn <= 0 {
		o.PerConn = 100
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	l := &Load{o: o, stop: make(chan struct{})}
	for range o.NewConns {
		l.wg.Add(1)
		go l.runNewConns()
	}
	for range o.KeepAlive {
		l.wg.Add(1)
		go l.runKeepAlive()
	}
	return l
}

// Stop ends the load: each goroutine finishes the request it is making and
// closes its connection. It returns when they all have. Calling it twice is
// harmless.
func (l *Load) Stop() {
	l.mu.Lock()
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.mu.Unlock()
	l.wg.Wait()
}

// Requests returns how many requests have been made (ended, either way) and
// how many of them succeeded.
func (l *Load) Requests() (made, ok int64) { return l.requests.Load(), l.ok.Load() }

// Failures returns the failed requests so far (at most 100,000 are kept;
// Failed counts them all).
func (l *Load) Failures() []Failure {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Failure(nil), l.failures...)
}

// Failed returns how many requests failed.
func (l *Load) Failed() int64 { return l.failed.Load() }

// Latencies returns the durations of the successful requests (unsorted).
func (l *Load) Latencies() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Duration(nil), l.latencies...)
}

// pause waits for the gap before a request and reports whether the load is
// still running.
func (l *Load) pause(rng *rand.Rand) bool {
	if l.o.Gap <= 0 {
		select {
		case <-l.stop:
			return false
		default:
			return true
		}
	}
	t := time.NewTimer(time.Duration(rng.Int64N(int64(2 * l.o.Gap))))
	defer t.Stop()
	select {
	case <-l.stop:
		return false
	case <-t.C:
		return true
	}
}

// batch is one goroutine's results, merged into the Load's every so often
// (so the goroutines do not contend on one lock for every request).
type batch struct {
	l         *Load
	failures  []Failure
	latencies []time.Duration
}

func (b *batch) success(d time.Duration) {
	b.l.requests.Add(1)
	b.l.ok.Add(1)
	b.latencies = append(b.latencies, d)
	if len(b.latencies) >= 256 {
		b.flush()
	}
}

func (b *batch) failure(f Failure) {
	b.l.requests.Add(1)
	b.l.failed.Add(1)
	b.failures = append(b.failures, f)
	b.flush() // at once: a test reads them as they happen
}

func (b *batch) flush() {
	b.l.mu.Lock()
	if room := maxFailures - len(b.l.failures); room > 0 {
		b.l.failures = append(b.l.failures, b.failures[:min(room, len(b.failures))]...)
	}
	b.l.latencies = append(b.l.latencies, b.latencies...)
	b.l.mu.Unlock()
	b.failures, b.latencies = b.failures[:0], b.latencies[:0]
}

func newRand() *rand.Rand { return rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())) }

func (l *Load) runNewConns() {
	defer l.wg.Done()
	b := &batch{l: l}
	defer b.flush()
	rng := newRand()
	for l.pause(rng) {
		start := time.Now()
		c, err := l.dial()
		if err != nil {
			b.failure(Failure{Dialed: start, At: time.Now(), Nth: 1, Class: classify("dial", err, 0), Err: err})
			continue
		}
		_, f := c.do(true)
		c.close()
		if f != nil {
			b.failure(*f)
		} else {
			b.success(time.Since(start))
		}
	}
}

func (l *Load) runKeepAlive() {
	defer l.wg.Done()
	b := &batch{l: l}
	defer b.flush()
	rng := newRand()
	var c *clientConn
	defer func() {
		if c != nil {
			c.close()
		}
	}()
	for l.pause(rng) {
		start := time.Now()
		if c == nil {
			var err error
			if c, err = l.dial(); err != nil {
				b.failure(Failure{KeepAlive: true, Dialed: start, At: time.Now(), Nth: 1, Class: classify("dial", err, 0), Err: err})
				continue
			}
		}
		closing, f := c.do(false)
		if f != nil {
			b.failure(*f)
			c.close()
			c = nil
			continue
		}
		b.success(time.Since(start))
		if closing || c.n >= l.o.PerConn {
			c.close()
			c = nil
		}
	}
}

// clientConn is one client connection and its reader.
type clientConn struct {
	l      *Load
	c      net.Conn
	cr     *countingReader
	br     *bufio.Reader
	port   uint16
	dialed time.Time
	n      int // requests made on it
}

type countingReader struct {
	r io.Reader
	n int
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += n
	return n, err
}

func (l *Load) dial() (*clientConn, error) {
	start := time.Now()
	c, err := net.DialTimeout("tcp", l.o.Addr, l.o.Timeout)
	if err != nil {
		return nil, err
	}
	cr := &countingReader{r: c}
	cc := &clientConn{l: l, c: c, cr: cr, br: bufio.NewReaderSize(cr, 1024), dialed: start}
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		cc.port = uint16(a.Port)
	}
	return cc, nil
}

func (c *clientConn) close() { _ = c.c.Close() }

const (
	requestKeepAlive = "GET / HTTP/1.1\r\nHost: chaos\r\nUser-Agent: chaoskit\r\n\r\n"
	requestClose     = "GET / HTTP/1.1\r\nHost: chaos\r\nUser-Agent: chaoskit\r\nConnection: close\r\n\r\n"
)

// do makes one request and reads its whole response. It returns whether the
// server ends the connection after it (Connection: close), or the failure.
func (c *clientConn) do(last bool) (closing bool, f *Failure) {
	c.n++
	fail := func(stage string, err error) (bool, *Failure) {
		got := c.cr.n
		return false, &Failure{KeepAlive: !last, Port: c.port, Dialed: c.dialed, At: time.Now(), Nth: c.n, Got: got,
			Class: classify(stage, err, got), Err: err}
	}
	c.cr.n = 0
	if err := c.c.SetDeadline(time.Now().Add(c.l.o.Timeout)); err != nil {
		return fail("write", err)
	}
	req := requestKeepAlive
	if last {
		req = requestClose
	}
	if _, err := io.WriteString(c.c, req); err != nil {
		return fail("write", err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return fail("read", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fail("read", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fail("response", fmt.Errorf("status %d", resp.StatusCode))
	}
	if c.l.o.Body != nil && !bytes.Equal(body, c.l.o.Body) {
		return fail("response", fmt.Errorf("body %q, want %q", body, c.l.o.Body))
	}
	return resp.Close, nil
}

// classify names what failed: the stage (dial, write, read, response) and
// the error's kind; for a read, whether any byte of the response had
// arrived.
func classify(stage string, err error, got int) string {
	var kind string
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		kind = "EOF"
	case errors.Is(err, syscall.ECONNRESET):
		kind = "reset"
	case errors.Is(err, syscall.EPIPE):
		kind = "broken pipe"
	case errors.Is(err, syscall.ECONNREFUSED):
		kind = "refused"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		kind = "no local port"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		kind = "timeout"
	default:
		kind = "other"
	}
	switch stage {
	case "read":
		if got == 0 {
			return "read: " + kind + " before response"
		}
		return "read: " + kind + " mid-response"
	case "response":
		return "bad response"
	}
	return stage + ": " + kind
}
