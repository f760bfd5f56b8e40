package wire

import (
	"bytes"
	"strconv"
)

// Handoff mode (Spec.Handoff): the master accepts every connection itself
// and passes each one's fd to a worker over that worker's control socket, as
// SCM_RIGHTS ancillary data on a datagram of its own. Two messages:
//
// Master to worker:
//
//	FDS <kinds>  with SCM_RIGHTS carrying len(kinds) connection fds, in
//	             order: kinds[i] says what fd i is, ConnTCP (set
//	             TCP_NODELAY) or ConnStream (another stream socket).
//	             1..MaxHandoffFDs fds per message. The payload is never
//	             empty: a zero-length datagram would read as EOF.
//
// Worker to master:
//
//	GONE <n>     n is how many of the fds handed to this worker since it
//	             started are no longer open in it: closed, or refused when
//	             it adopted them. Cumulative, not a delta, so a report the
//	             worker drops (its socket full) costs staleness, never a
//	             wrong count: the master's estimate of the worker's open
//	             connections is the fds it handed minus the last n.
const (
	MsgFDs  = "FDS"
	MsgGone = "GONE"
)

// MaxHandoffFDs is the most fds one FDS message carries: the kernel's
// SCM_MAX_FD, the limit of one SCM_RIGHTS message.
const MaxHandoffFDs = 253

// Connection kinds in an FDS message.
const (
	ConnTCP    byte = 't' // a TCP connection
	ConnStream byte = 'u' // another stream socket (AF_UNIX)
)

// HandoffFDs appends the FDS message announcing fds of the given kinds to
// dst (the fds themselves travel as SCM_RIGHTS beside it).
func HandoffFDs(dst, kinds []byte) []byte {
	dst = append(dst, MsgFDs+" "...)
	return append(dst, kinds...)
}

// ParseHandoffFDs reads an FDS message: the kinds of the fds it carries, one
// byte per fd, aliasing msg. ok is false for any other message, including an
// FDS message with no kinds, more than MaxHandoffFDs, or an unknown kind.
func ParseHandoffFDs(msg []byte) (kinds []byte, ok bool) {
	kinds, found := bytes.CutPrefix(msg, []byte(MsgFDs+" "))
	if !found || len(kinds) == 0 || len(kinds) > MaxHandoffFDs {
		return nil, false
	}
	for _, k := range kinds {
		if k != ConnTCP && k != ConnStream {
			return nil, false
		}
	}
	return kinds, true
}

// IsHandoffFDs reports whether msg is meant as an FDS message, well formed
// or not: a receiver closes the fds of a malformed one instead of taking
// them for another message.
func IsHandoffFDs(msg []byte) bool {
	return string(msg) == MsgFDs || bytes.HasPrefix(msg, []byte(MsgFDs+" "))
}

// Gone is the worker's GONE <n> report.
func Gone(n uint64) []byte {
	return strconv.AppendUint([]byte(MsgGone+" "), n, 10)
}

// ParseGone reads a GONE report; ok is false for any other message or a
// count that is not a decimal number.
func ParseGone(msg []byte) (n uint64, ok bool) {
	rest, found := bytes.CutPrefix(msg, []byte(MsgGone+" "))
	if !found || len(rest) == 0 || len(rest) > 20 {
		return 0, false
	}
	for _, c := range rest {
		if c < '0' || c > '9' {
			return 0, false // ParseUint would take a "+", and we never send one
		}
	}
	n, err := strconv.ParseUint(string(rest), 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}
