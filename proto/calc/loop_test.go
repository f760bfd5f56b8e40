package calc_test

import (
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prefork/prefork/internal/looptest"
	"github.com/prefork/prefork/internal/testkit"
	"github.com/prefork/prefork/loop"
	"github.com/prefork/prefork/proto/calc"
)

func startServer(t *testing.T) (string, *loop.Loop, *calc.Handler) {
	t.Helper()
	h := calc.New()
	addr, l := looptest.Start(t, loop.Config{Handler: h})
	return addr, l, h
}

// exchange writes req and reads exactly len(want) bytes back.
func exchange(t *testing.T, c net.Conn, req []byte, want string) {
	t.Helper()
	if _, err := c.Write(req); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read: %v (got %q so far, want %q)", err, got, want)
	}
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// requests reads the handler's counter on the loop's thread.
func requests(t *testing.T, l *loop.Loop, h *calc.Handler) uint64 {
	t.Helper()
	return looptest.OnLoop(t, l, h.Requests)
}

// mixedFrames returns n request frames of every kind and the responses the
// reference expects for them.
func mixedFrames(n int, seed int64) (req []byte, want string) {
	var sb strings.Builder
	ops := "+-*/%"
	for i := range n {
		x := seed*7919 + int64(i)*104729 - 5000
		y := int64(i%13) - 6
		switch i % 10 {
		case 7:
			x = math.MinInt64
			y = -1
		case 8:
			req = calc.AppendRawRequest(req, []byte("1  + 2"))
			sb.WriteString(resp(0, calc.CodeMalformed))
			continue
		case 9:
			x = math.MaxInt64 - int64(i)
		}
		op := ops[i%len(ops)]
		req = calc.AppendRequest(req, x, op, y)
		frame := calc.AppendRequest(nil, x, op, y)
		payload := frame[strings.IndexByte(string(frame), '\n')+1 : len(frame)-2]
		sb.WriteString(resp(refEval(string(payload))))
	}
	return req, sb.String()
}

func TestLoopbackPipelined(t *testing.T) {
	addr, l, h := startServer(t)
	c := testkit.Dial(t, addr)
	req, want := mixedFrames(500, 1)
	exchange(t, c, req, want) // all 500 frames in one write
	if got := requests(t, l, h); got != 500 {
		t.Errorf("Requests() = %d, want 500", got)
	}
}

func TestLoopbackByteAtATime(t *testing.T) {
	addr, l, h := startServer(t)
	c := testkit.Dial(t, addr)
	frames := [][]byte{
		calc.AppendRequest(nil, 1, '+', 2),
		calc.AppendRequest(nil, math.MinInt64, '%', -1),
		calc.AppendRawRequest(nil, []byte(strings.Repeat("0", 100)+"42 / -5")),
	}
	wants := []string{"3\r\n3 0\r\n", "3\r\n0 4\r\n", "4\r\n-8 0\r\n"}
	for i, frame := range frames {
		for j := range frame {
			if _, err := c.Write(frame[j : j+1]); err != nil {
				t.Fatalf("frame %d byte %d: write: %v", i, j, err)
			}
		}
		exchange(t, c, nil, wants[i])
	}
	if got := requests(t, l, h); got != uint64(len(frames)) {
		t.Errorf("Requests() = %d, want %d", got, len(frames))
	}
}

// TestLoopbackBadHeader checks that a framing error gets the earlier frames
// answered and then an orderly close: EOF, not a reset.
func TestLoopbackBadHeader(t *testing.T) {
	good := "5\r\n1 + 2\r\n6\r\n10 / 0\r\n"
	goodWant := "3\r\n3 0\r\n3\r\n0 1\r\n"
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"garbage only", []string{"garbage\r\n"}, ""},
		{"good then not digits", []string{good + "x\r\n5\r\n1 + 2\r\n"}, goodWant},
		{"good then 4097", []string{good + "4097\r\n"}, goodWant},
		{"good then five digits", []string{good + "12345"}, goodWant},
		{"good then LF only", []string{good + "5\n1 + 2\r\n"}, goodWant},
		{"good then missing payload CRLF", []string{good + "2\r\n1 + 2\r\n"}, goodWant},
		{"bad in a later write", []string{good, "5\r\n1 + 2", "\r\n", "0\r\n"}, goodWant + "3\r\n3 0\r\n"},
		// The peer keeps sending after the error: the lingering close reads
		// and drops it instead of answering it with a reset.
		{"bad then 1 MiB more", []string{good + "x\r\n" + strings.Repeat("5\r\n1 + 2\r\n", 1<<20/10)}, goodWant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, _, _ := startServer(t)
			c := testkit.Dial(t, addr)
			for _, w := range tt.writes {
				if _, err := c.Write([]byte(w)); err != nil {
					t.Fatalf("write: %v", err)
				}
			}
			got, err := io.ReadAll(c) // until EOF
			if err != nil {
				t.Fatalf("read: %v after %q, want EOF", err, got)
			}
			if string(got) != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLoopbackOthersServedAfterGarbage(t *testing.T) {
	addr, l, h := startServer(t)
	before := testkit.Dial(t, addr)
	exchange(t, before, calc.AppendRequest(nil, 2, '*', 21), "4\r\n42 0\r\n")

	bad := testkit.Dial(t, addr)
	if _, err := bad.Write([]byte("5\r\n1 + 2\r\nnot a header\r\n")); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(bad); err != nil || string(got) != "3\r\n3 0\r\n" {
		t.Fatalf("bad connection: got %q, %v; want %q, EOF", got, err, "3\r\n3 0\r\n")
	}

	exchange(t, before, calc.AppendRequest(nil, -9, '%', 4), "4\r\n-1 0\r\n")
	after := testkit.Dial(t, addr)
	exchange(t, after, calc.AppendRequest(nil, 100, '-', 1), "4\r\n99 0\r\n")
	if got := requests(t, l, h); got != 4 {
		t.Errorf("Requests() = %d, want 4", got)
	}
}

// TestLoopbackManyConns sends 1000 frames over 8 connections at once, each
// written in uneven chunks that cut frames, and checks every connection gets
// its answers in order.
func TestLoopbackManyConns(t *testing.T) {
	const conns, perConn = 8, 125
	addr, l, h := startServer(t)
	var wg sync.WaitGroup
	for i := range conns {
		c := testkit.Dial(t, addr)
		req, want := mixedFrames(perConn, int64(i))
		wg.Add(2)
		go func() {
			defer wg.Done()
			for off, size := 0, 1; off < len(req); off, size = off+size, size*3%97+1 {
				if _, err := c.Write(req[off:min(off+size, len(req))]); err != nil {
					t.Errorf("conn %d: write: %v", i, err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			got := make([]byte, len(want))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Errorf("conn %d: read: %v", i, err)
				return
			}
			if string(got) != want {
				t.Errorf("conn %d: got %q, want %q", i, got, want)
			}
		}()
	}
	wg.Wait()
	if got := requests(t, l, h); got != conns*perConn {
		t.Errorf("Requests() = %d, want %d", got, conns*perConn)
	}
}

// TestFrameHeaderTimeout: a frame cut short and never finished closes its
// connection after the loop's HeaderTimeout; a connection whose frames
// complete, however slowly between them, stays.
func TestFrameHeaderTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	h := calc.New()
	addr, l := looptest.Start(t, loop.Config{Handler: h, HeaderTimeout: timeout})
	stuck, good := testkit.Dial(t, addr), testkit.Dial(t, addr)
	frame := calc.AppendRawRequest(nil, []byte("1 + 2"))
	if _, err := stuck.Write(frame[:len(frame)-1]); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	closedAt := make(chan time.Duration, 1)
	go func() {
		_, err := io.ReadAll(stuck)
		if err != nil {
			t.Errorf("stuck client: want a clean close, got %v", err)
		}
		closedAt <- time.Since(start)
	}()
	for time.Since(start) < 2*timeout {
		if _, err := good.Write(frame); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(good, make([]byte, 1)); err != nil {
			t.Fatalf("good client: %v", err)
		}
		time.Sleep(timeout / 5) // the client's pace
	}
	if el := <-closedAt; el < timeout {
		t.Errorf("closed after %v, before the header timeout", el)
	}
	testkit.WaitFor(t, "header timeout counted", 10*time.Second, func() bool {
		st := looptest.OnLoop(t, l, l.Stats)
		return st.Closed[loop.ReasonHeaderTimeout] == 1 && st.Active == 1
	})
}
