package master

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/internal/testkit"
	"github.com/prefork/prefork/metrics"
	"github.com/prefork/prefork/reuseport"
	"github.com/prefork/prefork/wire"
)

// Handoff placement and the acceptor, without a worker process: placement
// against fake senders (table tests), then the real acceptor on a loopback
// listener handing connections over real SEQPACKET socketpairs.

// fakeSender records the fds of each message it is given, or fails with err.
type fakeSender struct {
	mu      sync.Mutex
	err     error
	batches [][]int
}

func (s *fakeSender) sendFDs(msg, oob []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return os.NewSyscallError("sendmsg", s.err)
	}
	kinds, ok := wire.ParseHandoffFDs(msg)
	fds := rights(oob)
	if !ok || len(kinds) != len(fds) {
		return fmt.Errorf("bad FDS message %q with %d fds", msg, len(fds))
	}
	s.batches = append(s.batches, fds)
	return nil
}

func (s *fakeSender) fds() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, b := range s.batches {
		out = append(out, b...)
	}
	return out
}

func rights(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for i := range msgs {
		got, err := unix.ParseUnixRights(&msgs[i])
		if err == nil {
			fds = append(fds, got...)
		}
	}
	return fds
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// placeFixture is an acceptor with no epoll set: place works on pending and
// peers alone. Its fds are fake numbers; closeFD records instead of closing.
type placeFixture struct {
	a      *acceptor
	met    *metrics.Handoff
	peers  []*peer
	sends  []*fakeSender
	closed []int
	next   int
}

func newPlaceFixture(n int) *placeFixture {
	f := &placeFixture{met: metrics.NewHandoff(prometheus.NewRegistry()), next: 1000}
	f.a = &acceptor{log: quietLog(), met: f.met, now: time.Unix(1000, 0)}
	f.a.closeFD = func(fd int) error { f.closed = append(f.closed, fd); return nil }
	for i := 0; i < n; i++ {
		s := &fakeSender{}
		p := &peer{pid: 100 + i, slot: i, send: s, handoffs: f.met.Handoffs.WithLabelValues(fmt.Sprint(i))}
		f.peers, f.sends = append(f.peers, p), append(f.sends, s)
		f.a.peers = append(f.a.peers, p)
	}
	return f
}

// accept queues n fake connections and places them.
func (f *placeFixture) accept(n int) {
	for i := 0; i < n; i++ {
		f.a.pending = append(f.a.pending, pendingConn{fd: f.next, kind: wire.ConnTCP, since: f.a.now})
		f.next++
	}
	f.a.place()
}

// counts is how many fds each fake worker received.
func (f *placeFixture) counts() []int {
	out := make([]int, len(f.sends))
	for i, s := range f.sends {
		out[i] = len(s.fds())
	}
	return out
}

func TestHandoffPlacement(t *testing.T) {
	for _, tc := range []struct {
		name   string
		peers  int
		setup  func(f *placeFixture)
		accept []int // connections per place() call
		want   []int // fds received per peer
	}{
		{name: "equal loads go round-robin", peers: 3, accept: []int{7, 2}, want: []int{3, 3, 3}},
		{name: "one at a time round-robin", peers: 4, accept: []int{1, 1, 1, 1, 1, 1, 1, 1}, want: []int{2, 2, 2, 2}},
		{name: "the least loaded first", peers: 3,
			setup:  func(f *placeFixture) { f.peers[0].handed, f.peers[1].handed, f.peers[2].handed = 5, 2, 2 },
			accept: []int{3}, want: []int{0, 2, 1}},
		{name: "reported closes lower the load", peers: 2,
			setup: func(f *placeFixture) {
				f.peers[0].handed, f.peers[1].handed = 10, 2
				f.peers[0].reportClosed(9) // load 1 against 2
			},
			accept: []int{3}, want: []int{2, 1}},
		{name: "an older report never raises the load", peers: 2,
			setup: func(f *placeFixture) {
				f.peers[0].handed, f.peers[1].handed = 10, 2
				f.peers[0].reportClosed(9)
				f.peers[0].reportClosed(3) // out of order: ignored
			},
			accept: []int{1}, want: []int{1, 0}},
		{name: "a report above what was handed counts as none open", peers: 2,
			setup: func(f *placeFixture) {
				f.peers[0].handed, f.peers[1].handed = 1, 1
				f.peers[0].reportClosed(5)
			},
			accept: []int{1}, want: []int{1, 0}},
		{name: "a full socket is skipped", peers: 3,
			setup:  func(f *placeFixture) { f.sends[1].err = unix.EAGAIN },
			accept: []int{6}, want: []int{3, 0, 3}},
		{name: "a worker gone is skipped", peers: 3,
			setup:  func(f *placeFixture) { f.sends[0].err = unix.EPIPE },
			accept: []int{5}, want: []int{0, 3, 2}},
		{name: "more than one message's worth", peers: 1, accept: []int{300}, want: []int{300}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newPlaceFixture(tc.peers)
			if tc.setup != nil {
				tc.setup(f)
			}
			total := 0
			for _, n := range tc.accept {
				f.accept(n)
				total += n
			}
			if got := f.counts(); !slices.Equal(got, tc.want) {
				t.Errorf("fds per worker: got %v, want %v", got, tc.want)
			}
			// Every connection sent exactly once, the master's copy closed
			// once sent, nothing left pending.
			var sent []int
			for _, s := range f.sends {
				sent = append(sent, s.fds()...)
			}
			slices.Sort(sent)
			if len(slices.Compact(slices.Clone(sent))) != len(sent) || len(sent) != total {
				t.Errorf("sent fds: got %d (%d distinct), want %d once each", len(sent), len(slices.Compact(slices.Clone(sent))), total)
			}
			closed := slices.Clone(f.closed)
			slices.Sort(closed)
			if !slices.Equal(closed, sent) {
				t.Errorf("the master closed %d fds, sent %d: each sent fd must be closed once", len(closed), len(sent))
			}
			if len(f.a.pending) != 0 {
				t.Errorf("pending after place: got %d, want 0", len(f.a.pending))
			}
			for i, s := range f.sends {
				for _, b := range s.batches {
					if len(b) > wire.MaxHandoffFDs {
						t.Errorf("worker %d: a message with %d fds, more than %d", i, len(b), wire.MaxHandoffFDs)
					}
				}
			}
		})
	}
}

// TestHandoffPlacementFailures: what a failed send does to the worker's
// standing, the counts and the metrics.
func TestHandoffPlacementFailures(t *testing.T) {
	t.Run("full socket: skipped for a moment, counted", func(t *testing.T) {
		f := newPlaceFixture(2)
		f.sends[0].err = unix.EAGAIN
		f.accept(4)
		if got := f.counts(); !slices.Equal(got, []int{0, 4}) {
			t.Fatalf("fds per worker: got %v, want [0 4]", got)
		}
		if f.peers[0].handed != 0 || f.peers[1].handed != 4 {
			t.Errorf("handed: got %d and %d, want 0 and 4 (a failed send is not counted)", f.peers[0].handed, f.peers[1].handed)
		}
		if got := value(t, f.met.Errors.WithLabelValues(metrics.HandoffSocketFull)); got == 0 {
			t.Error("socket_full errors: got 0")
		}
		// Still full within fullBackoff: skipped; after it, tried again.
		f.sends[0].err = nil
		f.accept(1)
		if got := f.counts(); !slices.Equal(got, []int{0, 5}) {
			t.Errorf("within the backoff: got %v, want [0 5]", got)
		}
		f.a.now = f.a.now.Add(fullBackoff)
		f.accept(1)
		if got := f.counts(); !slices.Equal(got, []int{1, 5}) {
			t.Errorf("after the backoff: got %v, want [1 5]", got)
		}
	})
	t.Run("worker gone: dropped, its share re-placed", func(t *testing.T) {
		f := newPlaceFixture(2)
		f.sends[1].err = unix.EPIPE
		f.accept(6)
		if got := f.counts(); !slices.Equal(got, []int{6, 0}) {
			t.Fatalf("fds per worker: got %v, want [6 0]", got)
		}
		if len(f.a.peers) != 1 || f.a.peers[0] != f.peers[0] {
			t.Errorf("peers after the failure: got %d, want only worker 0", len(f.a.peers))
		}
		if got := value(t, f.met.Errors.WithLabelValues(metrics.HandoffWorkerGone)); got != 3 {
			t.Errorf("worker_gone errors: got %v, want 3 (its share of 6)", got)
		}
	})
	t.Run("nobody to take them: held, then closed", func(t *testing.T) {
		f := newPlaceFixture(1)
		f.sends[0].err = unix.EPIPE
		f.accept(3)
		if len(f.a.pending) != 3 || len(f.closed) != 0 {
			t.Fatalf("pending %d closed %d: want 3 held, none closed", len(f.a.pending), len(f.closed))
		}
		if f.a.canAccept() {
			t.Error("canAccept with no worker: got true; the listeners must be left alone")
		}
		// A worker arrives in time: they go to it.
		s := &fakeSender{}
		f.a.peers = append(f.a.peers, &peer{pid: 9, slot: 0, send: s, handoffs: f.met.Handoffs.WithLabelValues("0")})
		f.a.place()
		if got := len(s.fds()); got != 3 || len(f.a.pending) != 0 {
			t.Fatalf("the new worker got %d, pending %d; want 3 and 0", got, len(f.a.pending))
		}
	})
	t.Run("expired: closed and counted", func(t *testing.T) {
		pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(pair[1])
		f := newPlaceFixture(0)
		f.a.pending = []pendingConn{{fd: pair[0], kind: wire.ConnStream, since: f.a.now}}
		f.a.place()
		f.a.now = f.a.now.Add(pendingHold)
		f.a.expire()
		if len(f.a.pending) != 0 {
			t.Fatalf("pending after the hold: got %d, want 0", len(f.a.pending))
		}
		if got := value(t, f.met.Errors.WithLabelValues(metrics.HandoffNoWorker)); got != 1 {
			t.Errorf("no_worker errors: got %v, want 1", got)
		}
		if n, err := unix.Read(pair[1], make([]byte, 1)); n != 0 || err != nil {
			t.Errorf("the client side after expiry: read %d, %v; want EOF", n, err)
		}
	})
}

// seqpair returns a control socketpair as the master has it (a unixControl
// in Go's poller) and the worker's end, a raw fd.
func seqpair(t *testing.T) (unixControl, int) {
	t.Helper()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(pair[0]), "control")
	fc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	ctl := unixControl{fc.(*net.UnixConn)}
	t.Cleanup(func() { ctl.Close(); unix.Close(pair[1]) })
	return ctl, pair[1]
}

// recvFDs reads FDS messages from a worker's end until it has n fds.
func recvFDs(t *testing.T, fd, n int) []int {
	t.Helper()
	var out []int
	buf := make([]byte, 512)
	oob := make([]byte, unix.CmsgSpace(4*wire.MaxHandoffFDs))
	_ = unix.SetNonblock(fd, false)
	tv := unix.Timeval{Sec: 10}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	for len(out) < n {
		m, oobn, flags, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err != nil {
			t.Fatalf("recvmsg after %d of %d fds: %v", len(out), n, err)
		}
		if flags&unix.MSG_CTRUNC != 0 {
			t.Fatal("MSG_CTRUNC")
		}
		kinds, ok := wire.ParseHandoffFDs(buf[:m])
		fds := rights(oob[:oobn])
		if !ok || len(kinds) != len(fds) {
			t.Fatalf("message %q with %d fds", buf[:m], len(fds))
		}
		for _, k := range kinds {
			if k != wire.ConnTCP {
				t.Errorf("kind %q, want %q", k, wire.ConnTCP)
			}
		}
		out = append(out, fds...)
	}
	return out
}

// inodeRefs counts this process's fds per socket inode.
func inodeRefs(t *testing.T) map[string]int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range ents {
		if link, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(link, "socket:") {
			out[link]++
		}
	}
	return out
}

func inodeOf(t *testing.T, fd int) string {
	t.Helper()
	link, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		t.Fatal(err)
	}
	return link
}

// TestAcceptorHandsOver runs the real acceptor on a loopback listener with
// two fake workers on real socketpairs: connections are split evenly, each
// fd arrives working, the master keeps no copy, a worker whose socket is
// gone gets nothing more, with no worker connections wait in the kernel,
// and stop leaves the listener open.
func TestAcceptorHandsOver(t *testing.T) {
	lfd, err := reuseport.Listen("127.0.0.1:0", reuseport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(lfd)
	addr, err := reuseport.BoundAddr(lfd)
	if err != nil {
		t.Fatal(err)
	}
	met := metrics.NewHandoff(prometheus.NewRegistry())
	a, err := newAcceptor([]int{lfd}, quietLog(), met)
	if err != nil {
		t.Fatal(err)
	}
	go a.run()
	defer a.stop()

	var ends []int
	var peers []*peer
	for i := 0; i < 2; i++ {
		ctl, end := seqpair(t)
		rc, err := ctl.c.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		p := &peer{pid: i, slot: i, send: rawSender{rc}, handoffs: met.Handoffs.WithLabelValues(fmt.Sprint(i))}
		peers, ends = append(peers, p), append(ends, end)
	}

	// No worker yet: a connection waits in the kernel's queue, unaccepted.
	early := testkit.Dial(t, addr)
	testkit.WaitFor(t, "the early connection queued", 5*time.Second, func() bool {
		info, err := unix.GetsockoptTCPInfo(lfd, unix.IPPROTO_TCP, unix.TCP_INFO)
		return err == nil && info.Unacked == 1
	})
	for _, p := range peers {
		a.add(p)
	}
	const n = 20
	clients := []net.Conn{early}
	for i := 1; i < n; i++ {
		clients = append(clients, testkit.Dial(t, addr))
	}
	got := [][]int{recvFDs(t, ends[0], n/2), recvFDs(t, ends[1], n/2)}
	refs := inodeRefs(t)
	for w, fds := range got {
		for _, fd := range fds {
			if r := refs[inodeOf(t, fd)]; r != 1 {
				t.Errorf("worker %d's fd %d: %d fds of this process refer to its socket, want 1 (the master's copy must be closed)", w, fd, r)
			}
		}
	}
	// Each received fd is a live connection to one of the clients.
	for _, fds := range got {
		for _, fd := range fds {
			if _, err := unix.Write(fd, []byte("x")); err != nil {
				t.Fatalf("write on a handed fd: %v", err)
			}
			unix.Close(fd)
		}
	}
	for i, c := range clients {
		b := make([]byte, 1)
		if _, err := io.ReadFull(c, b); err != nil || b[0] != 'x' {
			t.Fatalf("client %d: got %q, %v", i, b, err)
		}
	}
	if h0, h1 := value(t, met.Handoffs.WithLabelValues("0")), value(t, met.Handoffs.WithLabelValues("1")); h0 != n/2 || h1 != n/2 {
		t.Errorf("handoffs_total: got %v and %v, want %d each", h0, h1, n/2)
	}

	// Worker 1 stops reading and its socket fills: new connections go to
	// worker 0 meanwhile.
	fillSocket(t, peers[1])
	for i := 0; i < 4; i++ {
		testkit.Dial(t, addr)
	}
	for _, fd := range recvFDs(t, ends[0], 4) {
		unix.Close(fd)
	}
	if got := value(t, met.Errors.WithLabelValues(metrics.HandoffSocketFull)); got == 0 {
		t.Error("socket_full: got 0 after worker 1's socket filled")
	}
	// Worker 1's end goes away: every new connection goes to worker 0, also
	// once worker 1 is tried again (its fullBackoff over) and found gone.
	unix.Close(ends[1])
	deadline := time.Now().Add(5 * time.Second)
	for value(t, met.Errors.WithLabelValues(metrics.HandoffWorkerGone)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("worker_gone: still 0 5s after worker 1's end closed")
		}
		c := testkit.Dial(t, addr)
		for _, fd := range recvFDs(t, ends[0], 1) {
			unix.Close(fd)
		}
		c.Close()
	}
	for i := 0; i < 6; i++ {
		testkit.Dial(t, addr)
	}
	for _, fd := range recvFDs(t, ends[0], 6) {
		unix.Close(fd)
	}

	a.stop()
	select {
	case <-a.done:
	default:
		t.Fatal("stop returned before the acceptor ended")
	}
	if _, err := unix.GetsockoptInt(lfd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil {
		t.Errorf("listener after stop: %v; the acceptor must leave it open", err)
	}
	if got := value(t, met.Errors.WithLabelValues(metrics.HandoffNoWorker)); got != 0 {
		t.Errorf("no_worker: got %v, want 0", got)
	}
}

// fillSocket writes to p's control socket until the kernel refuses more.
func fillSocket(t *testing.T, p *peer) {
	t.Helper()
	junk := make([]byte, 4096)
	for i := 0; ; i++ {
		err := p.send.sendFDs(junk, nil)
		if err != nil {
			if !errors.Is(err, unix.EAGAIN) {
				t.Fatalf("filling the socket: %v", err)
			}
			return
		}
		if i > 1<<20 {
			t.Fatal("the socket never filled")
		}
	}
}
