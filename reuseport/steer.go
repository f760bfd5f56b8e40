package reuseport

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"golang.org/x/sys/unix"
)

// MaxGroup is the largest group Steer and Group handle. The steering program
// is 2*n+3 classic BPF instructions for n live members (at most 515, far below
// the kernel's BPF_MAXINSNS of 4096) and a SYN walks at most n compare-and-jump
// instructions, so 256 keeps both small; a pre-fork master has far fewer slots.
const MaxGroup = 256

// Ancillary loads of classic BPF, from include/uapi/linux/filter.h
// (golang.org/x/sys/unix does not define them): a BPF_LD|BPF_W|BPF_ABS load
// at SKF_AD_OFF+SKF_AD_x reads a value the kernel supplies instead of packet
// bytes.
const (
	skfAdOff    = -0x1000 // SKF_AD_OFF
	skfAdRXHash = 32      // SKF_AD_RXHASH: skb->hash, the flow hash
	skfAdRandom = 56      // SKF_AD_RANDOM: a fresh pseudo-random u32
)

// skfAd is the K operand of an ancillary load, SKF_AD_OFF+ad as the kernel's
// u32 reads it.
func skfAd(ad int32) uint32 { return uint32(int32(skfAdOff) + ad) }

// steerProgram compiles the steering program for a group whose members at the
// indexes idx are live (idx non-empty, every index < MaxGroup):
//
//	ld   #rxhash          ; A = skb->hash
//	jeq  #0, 0, 1         ; no hash computed for this packet?
//	ld   #rand            ;   then A = a random u32
//	mod  #n               ; A = A % n, n = len(idx)
//	jeq  #0, 0, 1         ; k == 0?
//	ret  #idx[0]          ;   then socket idx[0]
//	...                   ; (one pair for each k < n-1)
//	ret  #idx[n-1]        ; k == n-1
//
// skb->hash is the flow hash the NIC (RSS) or RPS computed, or the sender's
// random sk_txhash on loopback; it is 0 when neither happened (a NIC without
// hashing and RPS off), and without the fallback to SKF_AD_RANDOM every SYN
// would then go to idx[0].
func steerProgram(idx []int) []unix.SockFilter {
	n := len(idx)
	prog := make([]unix.SockFilter, 0, 2*n+3)
	prog = append(prog,
		unix.SockFilter{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: skfAd(skfAdRXHash)},
		unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: 0, Jt: 0, Jf: 1},
		unix.SockFilter{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: skfAd(skfAdRandom)},
		unix.SockFilter{Code: unix.BPF_ALU | unix.BPF_MOD | unix.BPF_K, K: uint32(n)},
	)
	for k, i := range idx[:n-1] {
		prog = append(prog,
			unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: uint32(k), Jt: 0, Jf: 1},
			unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: uint32(i)},
		)
	}
	return append(prog, unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: uint32(idx[n-1])})
}

// liveIndexes checks Steer's arguments and returns the group indexes of the
// live members.
func liveIndexes(fds []int, live []bool) ([]int, error) {
	if len(fds) != len(live) {
		return nil, fmt.Errorf("reuseport steer: %d sockets but %d live flags", len(fds), len(live))
	}
	if len(fds) > MaxGroup {
		return nil, fmt.Errorf("reuseport steer: %d sockets, more than MaxGroup (%d)", len(fds), MaxGroup)
	}
	var idx []int
	for i, ok := range live {
		if ok {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil, fmt.Errorf("reuseport steer: none of the %d sockets is live", len(fds))
	}
	return idx, nil
}

// Steer attaches to the reuseport group that fds form a classic BPF program
// (SO_ATTACH_REUSEPORT_CBPF) that spreads new connections evenly over the
// members whose live[i] is true and never picks a member whose live[i] is
// false. fds must be in the order the sockets joined the group, so that fds[i]
// is the member at group index i (see the package doc for the kernel's rule,
// and Group for bookkeeping that follows it); only fds[0] is used for the
// system call, since a program attached through any member applies to the
// whole group, replacing the one attached before. Steer returns an error if
// no member is live, if len(live) != len(fds) or if the group is larger than
// MaxGroup.
//
// The program picks live member number hash % nlive, hash being the packet's
// flow hash (SKF_AD_RXHASH), or a random number (SKF_AD_RANDOM) for a packet
// with no flow hash. It must be re-attached whenever a socket joins or leaves
// the group: group indexes move when a member leaves, and a socket that joined
// after the program was built gets no connections.
func Steer(fds []int, live []bool) error {
	idx, err := liveIndexes(fds, live)
	if err != nil {
		return err
	}
	filter := steerProgram(idx)
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.SetsockoptSockFprog(fds[0], unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF, &prog); err != nil {
		return fmt.Errorf("reuseport steer: %w", os.NewSyscallError("setsockopt SO_ATTACH_REUSEPORT_CBPF", err))
	}
	return nil
}

// Unsteer detaches the program attached to fd's reuseport group
// (SO_DETACH_REUSEPORT_BPF, Linux 5.3 and later), so the kernel picks members
// by its own hash of the connection's addresses again. A group with no program
// attached is left as it is and is not an error.
func Unsteer(fd int) error {
	err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DETACH_REUSEPORT_BPF, 0)
	if err != nil && err != unix.ENOENT {
		return fmt.Errorf("reuseport unsteer: %w", os.NewSyscallError("setsockopt SO_DETACH_REUSEPORT_BPF", err))
	}
	return nil
}

// Group tracks the listening sockets of one SO_REUSEPORT group in the order
// the kernel indexes them, marks members live or retiring, and keeps the
// group steered away from retiring members: whenever some member is retiring
// a Steer program over the live ones is attached, re-attached after every
// join and leave, and when none is retiring the program is detached and the
// kernel's own hash applies.
//
// The zero Group is empty and ready to use. Group is not safe for concurrent
// use; it is meant for the one process (the master) that opens and closes the
// group's sockets. It only knows of the joins and leaves made through Add and
// Close: a member that leaves otherwise (closed elsewhere, shut down by a
// worker, or its last descriptor closed when a worker exits) moves the group
// indexes behind its back.
type Group struct {
	fds     []int  // fds[i] is the member at group index i
	live    []bool // live[i]: fds[i] may be given new connections
	steered bool   // a program is attached
}

// AdoptGroup rebuilds the Group of a process that took over the sockets of
// another one (a master upgraded in place: the sockets, the group and any
// attached program live on in the kernel; only this bookkeeping is new).
// fds and live are the former Group's FDs() and Live(), in group-index
// order. The steering program is attached again for the members as they
// are, or detached if all are live.
func AdoptGroup(fds []int, live []bool) (*Group, error) {
	if len(fds) != len(live) {
		return nil, fmt.Errorf("reuseport group: adopt %d fds with %d live flags", len(fds), len(live))
	}
	g := &Group{fds: slices.Clone(fds), live: slices.Clone(live), steered: true}
	if err := g.steer(); err != nil {
		return nil, err
	}
	return g, nil
}

// Len returns the number of members.
func (g *Group) Len() int { return len(g.fds) }

// FDs returns the members' descriptors in group-index order.
func (g *Group) FDs() []int { return slices.Clone(g.fds) }

// Live returns, in group-index order, whether each member is live (not
// retiring).
func (g *Group) Live() []bool { return slices.Clone(g.live) }

// Index returns fd's group index, or -1 if fd is not a member.
func (g *Group) Index(fd int) int { return slices.Index(g.fds, fd) }

// Add records fd, a listening socket with SO_REUSEPORT (as Listen opens it
// with Options.ReusePort), as the newest, live, member. For TCP a socket joins
// its group in listen(2), so Add must be called for each socket right after
// it starts listening, before another socket joins the same group. If some
// member is retiring, Add re-attaches the program so that fd gets its share.
func (g *Group) Add(fd int) error {
	if g.Index(fd) >= 0 {
		return fmt.Errorf("reuseport group: fd %d added twice", fd)
	}
	if len(g.fds) >= MaxGroup {
		return fmt.Errorf("reuseport group: fd %d would make more than MaxGroup (%d) members", fd, MaxGroup)
	}
	for _, opt := range []struct {
		name string
		opt  int
	}{{"SO_REUSEPORT", unix.SO_REUSEPORT}, {"SO_ACCEPTCONN", unix.SO_ACCEPTCONN}} {
		v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, opt.opt)
		if err != nil {
			return fmt.Errorf("reuseport group: add fd %d: %w", fd, os.NewSyscallError("getsockopt "+opt.name, err))
		}
		if v == 0 {
			return fmt.Errorf("reuseport group: add fd %d: %s is off (not a reuseport listener)", fd, opt.name)
		}
	}
	if len(g.fds) > 0 {
		// A socket bound elsewhere is in another group; a slip here would
		// make every index wrong.
		got, err := BoundAddr(fd)
		if err != nil {
			return fmt.Errorf("reuseport group: add fd %d: %w", fd, err)
		}
		want, err := BoundAddr(g.fds[0])
		if err != nil {
			return fmt.Errorf("reuseport group: add fd %d: %w", fd, err)
		}
		if got != want {
			return fmt.Errorf("reuseport group: add fd %d: bound to %s, the group to %s", fd, got, want)
		}
	}
	g.fds = append(g.fds, fd)
	g.live = append(g.live, true)
	return g.steer()
}

// Retire marks fd as retiring and steers new connections away from it, to the
// live members. Connections already queued on fd stay there: the retiring
// worker should accept them (and any whose handshake was under way) before
// Close. Retire fails, changing nothing, if fd is the last live member.
func (g *Group) Retire(fd int) error {
	i := g.Index(fd)
	if i < 0 {
		return fmt.Errorf("reuseport group: retire fd %d: not a member", fd)
	}
	if !g.live[i] {
		return nil
	}
	if slices.Index(g.live, true) == i && slices.Index(g.live[i+1:], true) < 0 {
		return fmt.Errorf("reuseport group: retire fd %d: it is the last live member", fd)
	}
	g.live[i] = false
	if err := g.steer(); err != nil {
		g.live[i] = true
		return err
	}
	return nil
}

// Revive marks a member that Retire took out live again: new connections
// reach it once more (a paused slot whose worker is back). A live member
// is left as it is.
func (g *Group) Revive(fd int) error {
	i := g.Index(fd)
	if i < 0 {
		return fmt.Errorf("reuseport group: revive fd %d: not a member", fd)
	}
	if g.live[i] {
		return nil
	}
	g.live[i] = true
	if err := g.steer(); err != nil {
		g.live[i] = false
		return err
	}
	return nil
}

// Close takes fd out of the group and closes it, following the kernel: the
// member at the last index moves to fd's index. It then re-steers the group,
// or detaches the program when no retiring member remains. fd should have
// been retired and drained first: connections still queued on it are reset.
//
// Close leaves the group with shutdown(fd, SHUT_RD) before close(2). A
// listening socket leaves its group only when it stops listening, which
// close(2) does only if it drops the last reference to the socket anywhere,
// while a worker that inherited the socket may still hold one; shutdown stops
// it listening at once, so the index move happens now, when Group records it.
//
// Before the shutdown Close attaches a program that is right both before and
// after the move: it uses only live members whose index does not change, plus
// the last member if every other remaining member is live (after the move its
// old index is past the end, and the kernel's hash then picks among live
// members only). If no live member qualifies (the only live member is the
// last and another member is retiring) the old program stays until the new
// one is attached, and a SYN arriving in between may land on a retiring
// member.
//
// If shutdown fails the group is unchanged and fd stays open.
func (g *Group) Close(fd int) error {
	i := g.Index(fd)
	if i < 0 {
		return fmt.Errorf("reuseport group: close fd %d: not a member", fd)
	}
	last := len(g.fds) - 1
	if g.steered {
		if pre := liveAcrossLeave(g.live, i); slices.Contains(pre, true) {
			if err := Steer(g.fds, pre); err != nil {
				return fmt.Errorf("reuseport group: close fd %d: %w", fd, err)
			}
		}
	}
	if err := unix.Shutdown(fd, unix.SHUT_RD); err != nil {
		err = fmt.Errorf("reuseport group: close fd %d: %w", fd, os.NewSyscallError("shutdown", err))
		if g.steered {
			// Put back the program for the unchanged group.
			err = errors.Join(err, g.steer())
		}
		return err
	}
	g.fds[i], g.live[i] = g.fds[last], g.live[last]
	g.fds, g.live = g.fds[:last], g.live[:last]
	var cerr error
	if err := unix.Close(fd); err != nil {
		cerr = fmt.Errorf("reuseport group: close fd %d: %w", fd, os.NewSyscallError("close", err))
	}
	if len(g.fds) == 0 {
		// The group, and its program, went away with its last member.
		g.steered = false
		return cerr
	}
	return errors.Join(cerr, g.steer())
}

// liveAcrossLeave returns the members a program may pick both before and
// after member i leaves and the last member moves to index i: the live ones
// other than i and the last, and the last too if every member other than i is
// live (after the move its old index is past the end, so the kernel's hash
// picks, among live members only).
func liveAcrossLeave(live []bool, i int) []bool {
	last := len(live) - 1
	others := true // every member but i and the last is live
	for j, ok := range live {
		if j != i && j != last && !ok {
			others = false
		}
	}
	pre := make([]bool, len(live))
	for j, ok := range live {
		pre[j] = ok && j != i && (j != last || others)
	}
	return pre
}

// steer attaches the program for the current members if some member is
// retiring and detaches it otherwise.
func (g *Group) steer() error {
	if len(g.fds) == 0 {
		return nil
	}
	if slices.Contains(g.live, false) {
		if err := Steer(g.fds, g.live); err != nil {
			return fmt.Errorf("reuseport group: %w", err)
		}
		g.steered = true
		return nil
	}
	if !g.steered {
		return nil
	}
	if err := Unsteer(g.fds[0]); err != nil {
		return fmt.Errorf("reuseport group: %w", err)
	}
	g.steered = false
	return nil
}
