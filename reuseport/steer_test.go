package reuseport

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/prefork/prefork/internal/testenv"
	"golang.org/x/sys/unix"
)

// runCBPF interprets the subset of classic BPF that steerProgram emits, with
// rxhash and random as the ancillary values, and returns the value returned.
func runCBPF(t *testing.T, prog []unix.SockFilter, rxhash, random uint32) uint32 {
	t.Helper()
	var a uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			switch in.K {
			case skfAd(skfAdRXHash):
				a = rxhash
			case skfAd(skfAdRandom):
				a = random
			default:
				t.Fatalf("pc %d: load of K=%#x", pc, in.K)
			}
		case unix.BPF_ALU | unix.BPF_MOD | unix.BPF_K:
			if in.K == 0 {
				t.Fatalf("pc %d: mod by 0", pc)
			}
			a %= in.K
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K:
			if a == in.K {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case unix.BPF_RET | unix.BPF_K:
			return in.K
		default:
			t.Fatalf("pc %d: unexpected opcode %#x", pc, in.Code)
		}
	}
	t.Fatalf("program fell off its end")
	return 0
}

func TestSKFConstants(t *testing.T) {
	// linux/filter.h: SKF_AD_OFF (-0x1000), SKF_AD_RXHASH 32, SKF_AD_RANDOM 56.
	if got, want := skfAd(skfAdRXHash), uint32(0xfffff020); got != want {
		t.Errorf("SKF_AD_OFF+SKF_AD_RXHASH = %#x, want %#x", got, want)
	}
	if got, want := skfAd(skfAdRandom), uint32(0xfffff038); got != want {
		t.Errorf("SKF_AD_OFF+SKF_AD_RANDOM = %#x, want %#x", got, want)
	}
}

// TestSteerProgram checks the program's choice for every live set of small
// groups and for the largest group, against hash % nlive → k-th live index.
func TestSteerProgram(t *testing.T) {
	check := func(t *testing.T, live []bool) {
		t.Helper()
		idx, err := liveIndexes(make([]int, len(live)), live)
		if err != nil {
			t.Fatal(err)
		}
		prog := steerProgram(idx)
		if got, want := len(prog), 2*len(idx)+3; got != want {
			t.Fatalf("live %v: program has %d instructions, want %d", live, got, want)
		}
		n := uint32(len(idx))
		for _, h := range []uint32{1, 2, 3, n - 1, n, n + 1, 2*n + 5, 12345, 1<<31 + 7, ^uint32(0)} {
			if h == 0 {
				continue
			}
			if got, want := runCBPF(t, prog, h, 0), uint32(idx[h%n]); got != want {
				t.Fatalf("live %v, rxhash %d: got index %d, want %d", live, h, got, want)
			}
		}
		for r := range 2 * n {
			if got, want := runCBPF(t, prog, 0, r), uint32(idx[r%n]); got != want {
				t.Fatalf("live %v, rxhash 0, random %d: got index %d, want %d", live, r, got, want)
			}
		}
	}
	for size := 1; size <= 8; size++ {
		for mask := 1; mask < 1<<size; mask++ {
			live := make([]bool, size)
			for i := range live {
				live[i] = mask&(1<<i) != 0
			}
			check(t, live)
		}
	}
	all, odd, lastOnly := make([]bool, MaxGroup), make([]bool, MaxGroup), make([]bool, MaxGroup)
	for i := range all {
		all[i], odd[i] = true, i%2 == 1
	}
	lastOnly[MaxGroup-1] = true
	check(t, all)
	check(t, odd)
	check(t, lastOnly)
}

func TestSteerArgumentErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		fds  []int
		live []bool
		want string
	}{
		{"empty", nil, nil, "none of the 0 sockets is live"},
		{"none live", []int{-1, -1}, []bool{false, false}, "none of the 2 sockets is live"},
		{"length mismatch", []int{-1, -1}, []bool{true}, "2 sockets but 1 live flags"},
		{"too many", make([]int, MaxGroup+1), slices.Repeat([]bool{true}, MaxGroup+1), "more than MaxGroup"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Steer(tc.fds, tc.live)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Steer: got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestSteerSyscallErrors checks that the kernel's refusals come back wrapped.
func TestSteerSyscallErrors(t *testing.T) {
	fd, err := Listen("127.0.0.1:0", Options{}) // no SO_REUSEPORT: no group
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var se *os.SyscallError
	err = Steer([]int{fd}, []bool{true})
	if !errors.As(err, &se) || !errors.Is(err, unix.EINVAL) {
		t.Errorf("Steer on a socket without SO_REUSEPORT: got %v, want a wrapped EINVAL *os.SyscallError", err)
	}
	err = Unsteer(fd)
	if !errors.As(err, &se) || !errors.Is(err, unix.EINVAL) {
		t.Errorf("Unsteer on a socket without SO_REUSEPORT: got %v, want a wrapped EINVAL *os.SyscallError", err)
	}
	if err := Unsteer(-1); !errors.Is(err, unix.EBADF) {
		t.Errorf("Unsteer(-1): got %v, want EBADF", err)
	}
}

// TestLoopbackFlowHash checks that loopback SYNs carry a flow hash, so the
// spread tests exercise SKF_AD_RXHASH and not the SKF_AD_RANDOM fallback.
func TestLoopbackFlowHash(t *testing.T) {
	s := newSockets(t)
	fds := s.listen("127.0.0.1:0", 2)
	// ld rxhash; jeq #0 → ret #0; ret #1
	filter := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: skfAd(skfAdRXHash)},
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: 0, Jt: 0, Jf: 1},
		{Code: unix.BPF_RET | unix.BPF_K, K: 0},
		{Code: unix.BPF_RET | unix.BPF_K, K: 1},
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.SetsockoptSockFprog(fds[0], unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF, &prog); err != nil {
		t.Fatal(err)
	}
	if got, want := spread(t, fds, 50), []int{0, 50}; !slices.Equal(got, want) {
		t.Errorf("connections with rxhash 0 and not 0: got %v, want %v", got, want)
	}
}

func TestSteer(t *testing.T) {
	const n = 300
	s := newSockets(t)
	fds := s.listen("127.0.0.1:0", 3)
	for _, live := range [][]bool{
		{true, true, false},
		{true, false, true},
		{false, true, true},
		{false, true, false},
	} {
		if err := Steer(fds, live); err != nil {
			t.Fatal(err)
		}
		got := spread(t, fds, n)
		nlive := 0
		for _, ok := range live {
			if ok {
				nlive++
			}
		}
		t.Logf("live %v: %v", live, got)
		for i, ok := range live {
			switch {
			case !ok && got[i] != 0:
				t.Errorf("live %v: got %v, want 0 connections on socket %d", live, got, i)
			case ok && got[i] < n/nlive*3/4:
				t.Errorf("live %v: got %v, want at least %d on socket %d", live, got, n/nlive*3/4, i)
			}
		}
	}
	if err := Steer(fds, []bool{true, true, true}); err != nil {
		t.Fatal(err)
	}
	got := spread(t, fds, n)
	t.Logf("all live: %v", got)
	for i, c := range got {
		if c == 0 {
			t.Errorf("all live: got %v, want connections on socket %d", got, i)
		}
	}
}

// TestSteerMaxGroup attaches the largest programs to a group of MaxGroup.
func TestSteerMaxGroup(t *testing.T) {
	s := newSockets(t)
	fds := s.listen("127.0.0.1:0", MaxGroup)
	allButFirst, odd := make([]bool, MaxGroup), make([]bool, MaxGroup)
	for i := range allButFirst {
		allButFirst[i], odd[i] = i != 0, i%2 == 1
	}
	for _, live := range [][]bool{allButFirst, odd} {
		if err := Steer(fds, live); err != nil {
			t.Fatalf("Steer with %d live: %v", len(live), err)
		}
	}
	// Socket 0 is never live above; check a connection avoids it.
	if got := spread(t, fds, 10); got[0] != 0 {
		t.Errorf("socket 0 accepted %d connections, want 0", got[0])
	}
}

// TestOutOfRangeIndex checks that an index past the last member makes the
// kernel use its hash.
func TestOutOfRangeIndex(t *testing.T) {
	s := newSockets(t)
	fds := s.listen("127.0.0.1:0", 3)
	filter := steerProgram([]int{5})
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.SetsockoptSockFprog(fds[0], unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF, &prog); err != nil {
		t.Fatal(err)
	}
	got := spread(t, fds, 90)
	t.Logf("index 5 of 3: %v", got)
	for i, c := range got {
		if c == 0 {
			t.Errorf("got %v, want connections on socket %d (kernel hash)", got, i)
		}
	}
}

func TestUnsteer(t *testing.T) {
	s := newSockets(t)
	fds := s.listen("127.0.0.1:0", 3)
	if err := Unsteer(fds[1]); err != nil {
		t.Errorf("Unsteer with no program: %v", err)
	}
	if err := Steer(fds, []bool{true, false, false}); err != nil {
		t.Fatal(err)
	}
	if got, want := spread(t, fds, 30), []int{30, 0, 0}; !slices.Equal(got, want) {
		t.Fatalf("steered to socket 0: got %v, want %v", got, want)
	}
	// Through another member: the program belongs to the group.
	if err := Unsteer(fds[2]); err != nil {
		t.Fatal(err)
	}
	got := spread(t, fds, 300)
	t.Logf("unsteered: %v", got)
	for i, c := range got {
		if c == 0 {
			t.Errorf("unsteered: got %v, want connections on socket %d", got, i)
		}
	}
	if err := Unsteer(fds[0]); err != nil {
		t.Errorf("second Unsteer: %v", err)
	}
}

// whoGets steers everything to group index i (a program that returns i no
// matter what fds holds) and returns the fd among fds that accepts.
func whoGets(t *testing.T, fds []int, i int) int {
	t.Helper()
	live := make([]bool, len(fds))
	live[i] = true
	if err := Steer(fds, live); err != nil {
		t.Fatal(err)
	}
	got := spread(t, fds, 5)
	for j, c := range got {
		if c == 5 {
			return fds[j]
		}
	}
	t.Fatalf("steered to index %d: accepted %v, want all 5 on one socket", i, got)
	return -1
}

// kernelOrder asks the kernel which of fds is at each group index.
func kernelOrder(t *testing.T, fds []int) []int {
	t.Helper()
	order := make([]int, len(fds))
	for i := range fds {
		order[i] = whoGets(t, fds, i)
	}
	return order
}

// TestGroupIndexRule checks the kernel's rule Group relies on: join order
// gives the index, and a leaving member's index goes to the last member.
func TestGroupIndexRule(t *testing.T) {
	t.Run("join order", func(t *testing.T) {
		fds := newSockets(t).listen("127.0.0.1:0", 4)
		if got := kernelOrder(t, fds); !slices.Equal(got, fds) {
			t.Errorf("kernel order %v, want join order %v", got, fds)
		}
	})
	for _, tc := range []struct {
		name  string
		close int
		want  []int // indexes into the original fds
	}{
		{"close index 1", 1, []int{0, 3, 2}},
		{"close index 0", 0, []int{3, 1, 2}},
		{"close last", 3, []int{0, 1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSockets(t)
			fds := s.listen("127.0.0.1:0", 4)
			var g Group
			for _, fd := range fds {
				if err := g.Add(fd); err != nil {
					t.Fatal(err)
				}
			}
			if err := g.Close(fds[tc.close]); err != nil {
				t.Fatal(err)
			}
			s.forget(fds[tc.close])
			var want []int
			for _, i := range tc.want {
				want = append(want, fds[i])
			}
			if got := g.FDs(); !slices.Equal(got, want) {
				t.Errorf("Group order %v, want %v", got, want)
			}
			if got := kernelOrder(t, g.FDs()); !slices.Equal(got, want) {
				t.Errorf("kernel order %v, want %v", got, want)
			}
		})
	}
	t.Run("plain close", func(t *testing.T) {
		s := newSockets(t)
		fds := s.listen("127.0.0.1:0", 4)
		if err := unix.Close(fds[1]); err != nil {
			t.Fatal(err)
		}
		s.forget(fds[1])
		want := []int{fds[0], fds[3], fds[2]}
		if got := kernelOrder(t, want); !slices.Equal(got, want) {
			t.Errorf("kernel order %v, want %v", got, want)
		}
	})
	t.Run("close with a copy open stays", func(t *testing.T) {
		// A worker holding a copy keeps the socket listening in the group.
		s := newSockets(t)
		fds := s.listen("127.0.0.1:0", 3)
		dup, err := unix.Dup(fds[1])
		if err != nil {
			t.Fatal(err)
		}
		s.open[dup] = true
		unix.Close(fds[1])
		s.forget(fds[1])
		want := []int{fds[0], dup, fds[2]}
		if got := kernelOrder(t, want); !slices.Equal(got, want) {
			t.Errorf("kernel order %v, want %v", got, want)
		}
	})
	t.Run("Group.Close with a copy open", func(t *testing.T) {
		// Group.Close's shutdown takes the socket out even so.
		s := newSockets(t)
		fds := s.listen("127.0.0.1:0", 3)
		var g Group
		for _, fd := range fds {
			if err := g.Add(fd); err != nil {
				t.Fatal(err)
			}
		}
		dup, err := unix.Dup(fds[0])
		if err != nil {
			t.Fatal(err)
		}
		s.open[dup] = true
		if err := g.Close(fds[0]); err != nil {
			t.Fatal(err)
		}
		s.forget(fds[0])
		want := []int{fds[2], fds[1]}
		if got := g.FDs(); !slices.Equal(got, want) {
			t.Errorf("Group order %v, want %v", got, want)
		}
		if got := kernelOrder(t, want); !slices.Equal(got, want) {
			t.Errorf("kernel order %v, want %v", got, want)
		}
		if _, _, err := unix.Accept4(dup, unix.SOCK_CLOEXEC); err != unix.EINVAL {
			t.Errorf("accept on the copy after Group.Close: got %v, want EINVAL", err)
		}
	})
}

func TestGroupErrors(t *testing.T) {
	s := newSockets(t)
	fds := s.listen("127.0.0.1:0", 2)
	var g Group
	for _, fd := range fds {
		if err := g.Add(fd); err != nil {
			t.Fatal(err)
		}
	}
	plain, err := Listen("127.0.0.1:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.open[plain] = true
	unbound, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.open[unbound] = true
	if err := unix.SetsockoptInt(unbound, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"add twice", g.Add(fds[0]), "added twice"},
		{"add without SO_REUSEPORT", g.Add(plain), "SO_REUSEPORT is off"},
		{"add not listening", g.Add(unbound), "SO_ACCEPTCONN is off"},
		{"retire non-member", g.Retire(plain), "not a member"},
		{"close non-member", g.Close(plain), "not a member"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: got error %v, want one containing %q", tc.name, tc.err, tc.want)
		}
	}
	other, err := Listen("127.0.0.1:0", Options{ReusePort: true})
	if err != nil {
		t.Fatal(err)
	}
	s.open[other] = true
	if err := g.Add(other); err == nil || !strings.Contains(err.Error(), "the group to") {
		t.Errorf("add a socket bound elsewhere: got error %v, want one containing %q", err, "the group to")
	}
	var se *os.SyscallError
	if err := g.Add(-1); !errors.As(err, &se) || !errors.Is(err, unix.EBADF) {
		t.Errorf("Add(-1): got %v, want a wrapped EBADF *os.SyscallError", err)
	}
	if err := g.Retire(fds[0]); err != nil {
		t.Fatal(err)
	}
	if err := g.Retire(fds[1]); err == nil || !strings.Contains(err.Error(), "last live member") {
		t.Errorf("retiring the last live member: got error %v, want one containing %q", err, "last live member")
	}
	if got, want := g.Live(), []bool{false, true}; !slices.Equal(got, want) {
		t.Errorf("Live after a refused Retire: got %v, want %v", got, want)
	}
	if got, want := g.Len(), 2; got != want {
		t.Errorf("Len: got %d, want %d", got, want)
	}
}

func TestLiveAcrossLeave(t *testing.T) {
	const T, F = true, false
	for _, tc := range []struct {
		live []bool
		i    int
		want []bool
	}{
		{[]bool{T, F, T}, 1, []bool{T, F, T}},       // last moves into 1; then all live: hash is safe
		{[]bool{T, F, F, T}, 1, []bool{T, F, F, F}}, // last moves, and 2 stays retiring
		{[]bool{F, F, T}, 1, []bool{F, F, F}},       // only the moving last is live: none
		{[]bool{T, T, T, F}, 3, []bool{T, T, T, F}}, // the last leaves: nothing moves
		{[]bool{T, T, T}, 1, []bool{T, F, T}},       // a live member leaves
		{[]bool{F, T}, 0, []bool{F, T}},
		{[]bool{T}, 0, []bool{F}},
	} {
		if got := liveAcrossLeave(tc.live, tc.i); !slices.Equal(got, tc.want) {
			t.Errorf("liveAcrossLeave(%v, %d) = %v, want %v", tc.live, tc.i, got, tc.want)
		}
	}
}

// TestGroupJoinWhileRetiring checks that Add re-attaches the program, so a
// socket joining while another retires gets its share and the retiring one
// still gets nothing.
func TestGroupJoinWhileRetiring(t *testing.T) {
	s := newSockets(t)
	fds := s.listen("127.0.0.1:0", 3)
	var g Group
	for _, fd := range fds {
		if err := g.Add(fd); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Retire(fds[1]); err != nil {
		t.Fatal(err)
	}
	fds = append(fds, s.listen(addrOf(t, fds[0]), 1)...)
	if err := g.Add(fds[3]); err != nil {
		t.Fatal(err)
	}
	got := spread(t, fds, 300)
	t.Logf("socket 1 retiring, socket 3 joined: %v", got)
	for i, c := range got {
		if (i == 1) != (c == 0) {
			t.Errorf("got %v, want connections on every socket but 1", got)
			break
		}
	}
}

// TestGroupCloseKeepsOtherRetiring closes one of two retiring members and
// checks the other stays steered away from after its index moved.
func TestGroupCloseKeepsOtherRetiring(t *testing.T) {
	s := newSockets(t)
	fds := s.listen("127.0.0.1:0", 4)
	var g Group
	for _, fd := range fds {
		if err := g.Add(fd); err != nil {
			t.Fatal(err)
		}
	}
	for _, fd := range fds[1:3] {
		if err := g.Retire(fd); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Close(fds[1]); err != nil {
		t.Fatal(err)
	}
	s.forget(fds[1])
	if got, want := g.FDs(), []int{fds[0], fds[3], fds[2]}; !slices.Equal(got, want) {
		t.Fatalf("Group order %v, want %v", got, want)
	}
	got := spread(t, g.FDs(), 200)
	t.Logf("after closing index 1, index 2 retiring: %v", got)
	if got[0] == 0 || got[1] == 0 || got[2] != 0 {
		t.Errorf("got %v, want connections on the first two and none on the retiring third", got)
	}
	// Closing the last retiring member detaches the program.
	if err := g.Close(fds[2]); err != nil {
		t.Fatal(err)
	}
	s.forget(fds[2])
	if err := unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_DETACH_REUSEPORT_BPF, 0); err != unix.ENOENT {
		t.Errorf("detaching after the last retiring member closed: got %v, want ENOENT (no program)", err)
	}
}

// TestRetireWithoutLoss runs the retire sequence with connections queued on
// every socket and arriving all along, and checks every connection is
// accepted and works.
func TestRetireWithoutLoss(t *testing.T) {
	s := newSockets(t)
	fds := s.listen("127.0.0.1:0", 3)
	addr := addrOf(t, fds[0])
	var g Group
	for _, fd := range fds {
		if err := g.Add(fd); err != nil {
			t.Fatal(err)
		}
	}
	retiring := fds[2]

	clients := dial(t, addr, 200) // queued, not accepted
	q := waitQueued(t, fds, 200)
	t.Logf("queued before retiring: %v", q)
	if q[2] == 0 {
		t.Fatalf("queues %v: want connections queued on the socket to retire", q)
	}

	if err := g.Retire(retiring); err != nil {
		t.Fatal(err)
	}
	clients = append(clients, dial(t, addr, 100)...)
	q2 := waitQueued(t, fds, 300)
	t.Logf("queued after retiring and 100 more: %v", q2)
	if q2[2] != q[2] {
		t.Errorf("retiring socket's queue: got %d, want %d (no new connections)", q2[2], q[2])
	}

	// The retiring worker drains its queue, then the master closes it.
	drained := acceptFrom(t, retiring)
	if len(drained) != q[2] {
		t.Errorf("drained %d connections, want %d", len(drained), q[2])
	}
	if err := g.Close(retiring); err != nil {
		t.Fatal(err)
	}
	s.forget(retiring)
	if got, want := g.FDs(), fds[:2]; !slices.Equal(got, want) {
		t.Fatalf("Group order %v, want %v", got, want)
	}

	clients = append(clients, dial(t, addr, 100)...)
	rest := acceptAll(t, g.FDs(), 400-len(drained))
	t.Logf("accepted: %d drained from the retired socket, %d and %d from the others",
		len(drained), len(rest[0]), len(rest[1]))

	server := map[string]int{}
	for _, a := range slices.Concat(append(rest, drained)...) {
		server[a.peer.String()] = a.fd
	}
	if len(server) != 400 {
		t.Fatalf("accepted %d distinct connections, want 400", len(server))
	}
	for _, c := range clients {
		fd, ok := server[connPort(c).String()]
		if !ok {
			t.Errorf("client %v: no accepted connection", c.LocalAddr())
			continue
		}
		if err := exchange(t, c, fd); err != nil {
			t.Errorf("client %v: %v", c.LocalAddr(), err)
		}
	}
}

// TestCloseWithoutDrainResets checks the premise of the retire sequence:
// closing a listener resets the connections queued on it.
func TestCloseWithoutDrainResets(t *testing.T) {
	if b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_migrate_req"); err == nil {
		if v, _ := strconv.Atoi(strings.TrimSpace(string(b))); v != 0 {
			testenv.Skip(t, "net.ipv4.tcp_migrate_req is %d: the kernel migrates queued connections", v)
		}
	}
	s := newSockets(t)
	fds := s.listen("127.0.0.1:0", 3)
	if err := Steer(fds, []bool{false, false, true}); err != nil {
		t.Fatal(err)
	}
	clients := dial(t, addrOf(t, fds[0]), 30)
	if got, want := waitQueued(t, fds, 30), []int{0, 0, 30}; !slices.Equal(got, want) {
		t.Fatalf("queues: got %v, want %v", got, want)
	}
	unix.Close(fds[2])
	s.forget(fds[2])
	buf := make([]byte, 1)
	resets := 0
	for _, c := range clients {
		c.SetReadDeadline(deadline())
		if _, err := c.Read(buf); errors.Is(err, syscall.ECONNRESET) {
			resets++
		} else {
			t.Errorf("client %v read: got %v, want ECONNRESET", c.LocalAddr(), err)
		}
	}
	t.Logf("%d of %d queued connections reset by close", resets, len(clients))
}

func ExampleGroup() {
	var g Group
	addr := "127.0.0.1:0"
	for range 3 {
		fd, err := Listen(addr, Options{ReusePort: true})
		if err != nil {
			panic(err)
		}
		addr, _ = BoundAddr(fd) // the others join the port the first got
		if err := g.Add(fd); err != nil {
			panic(err)
		}
	}
	retiring := g.FDs()[0]
	if err := g.Retire(retiring); err != nil { // 1. steer new connections away
		panic(err)
	}
	// 2. The retiring worker accepts what is queued on its socket, then
	// closes its copy.
	if err := g.Close(retiring); err != nil { // 3. close; the last member moves
		panic(err)
	}
	fmt.Println(g.Len(), g.Index(retiring), g.Live())
	for _, fd := range g.FDs() {
		g.Close(fd)
	}
	// Output: 2 -1 [true true]
}

// TestGroupRevive: a member paused with Retire gets no new connections;
// revived, it gets its share again, and once every member is live the
// program is detached.
func TestGroupRevive(t *testing.T) {
	s := newSockets(t)
	fds := s.listen("127.0.0.1:0", 3)
	var g Group
	for _, fd := range fds {
		if err := g.Add(fd); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Retire(fds[2]); err != nil {
		t.Fatal(err)
	}
	if got := spread(t, fds, 300); got[2] != 0 {
		t.Fatalf("paused socket 2 got connections: %v", got)
	}
	if err := g.Revive(fds[2]); err != nil {
		t.Fatal(err)
	}
	if g.steered {
		t.Error("every member live again, but the program is still attached")
	}
	if got := spread(t, fds, 300); got[2] == 0 {
		t.Fatalf("revived socket 2 got no connection: %v", got)
	}
	if err := g.Revive(fds[2]); err != nil {
		t.Errorf("reviving a live member: %v, want nil", err)
	}
	if err := g.Revive(-1); err == nil {
		t.Error("reviving a non-member: want an error")
	}
}
