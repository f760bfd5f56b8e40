package wire

import (
	"bytes"
	"strconv"
)

// Control messages. The control socket is SOCK_SEQPACKET, so one message is
// one datagram: no framing. EOF on it means the other side is gone.
//
// Worker to master:
//
//	READY      the listeners are in the loop's epoll set; the worker serves
//	HB <n> <r> heartbeat, sent from the loop thread every Spec.Heartbeat,
//	           with the number of open connections and of requests served
//	           since the worker started (the master's --max-requests). An
//	           older worker sends HB <n>: the master takes it as "requests
//	           unknown" (a master upgraded in place adopts such workers)
//	METRICS <id>\n<body>
//	           answer to METRICS <id>: the worker's registry in the
//	           length-delimited protobuf exposition format
//
// Master to worker:
//
//	STOP       graceful stop: stop accepting, let connections finish within
//	           Settings.GracefulTimeout, exit 0
//	QUIT       fast stop: close everything, exit 0
//	RETIRE     like STOP, but first accept what is queued on the listeners
//	           (the master has steered new connections elsewhere), so a
//	           reuseport socket can be closed without losing a connection
//	METRICS <id>
//	           gather the worker's registry (on the loop thread) and answer
const (
	MsgReady     = "READY"
	MsgHeartbeat = "HB"
	MsgStop      = "STOP"
	MsgQuit      = "QUIT"
	MsgRetire    = "RETIRE"
	MsgMetrics   = "METRICS"
)

// MaxMessage bounds one control datagram: a metrics answer is some 10 KB.
const MaxMessage = 1 << 20

// Heartbeat is the HB message with the open connection count and the
// requests served so far: "HB <conns> <requests>". A negative conns is sent
// as -1 (unknown).
func Heartbeat(conns int, requests uint64) []byte {
	msg := make([]byte, 0, 32)
	msg = append(msg, MsgHeartbeat+" "...)
	msg = strconv.AppendInt(msg, int64(max(conns, -1)), 10)
	msg = append(msg, ' ')
	return strconv.AppendUint(msg, requests, 10)
}

// ParseHeartbeat reads an HB message; ok is false for any other message.
// Each count is -1 when it is missing or is not a decimal that fits (an int
// for conns, an int64 for requests) and is not negative: a bare "HB" has
// neither, and the "HB <conns>" of a worker of an older binary has no
// request count.
func ParseHeartbeat(msg []byte) (conns int, requests int64, ok bool) {
	if string(msg) == MsgHeartbeat {
		return -1, -1, true
	}
	rest, found := bytes.CutPrefix(msg, []byte(MsgHeartbeat+" "))
	if !found {
		return 0, 0, false
	}
	c, r, two := bytes.Cut(rest, []byte(" "))
	requests = -1
	if two {
		requests = parseCount(r, 64)
	}
	return int(parseCount(c, strconv.IntSize)), requests, true
}

// parseCount reads a count of a heartbeat: a decimal (an optional sign,
// digits) that fits in bitSize bits and is not negative; -1 for anything
// else.
func parseCount(b []byte, bitSize int) int64 {
	v, err := strconv.ParseInt(string(b), 10, bitSize)
	if err != nil || v < 0 {
		return -1
	}
	return v
}

// MetricsRequest is the master's METRICS <id>.
func MetricsRequest(id string) []byte { return []byte(MsgMetrics + " " + id) }

// ParseMetricsRequest reads a METRICS <id> request.
func ParseMetricsRequest(msg []byte) (id string, ok bool) {
	rest, found := bytes.CutPrefix(msg, []byte(MsgMetrics+" "))
	if !found || bytes.IndexByte(rest, '\n') >= 0 {
		return "", false
	}
	return string(rest), true
}

// MetricsReply is the worker's answer to METRICS <id>.
func MetricsReply(id string, body []byte) []byte {
	msg := make([]byte, 0, len(MsgMetrics)+len(id)+2+len(body))
	msg = append(msg, MsgMetrics+" "...)
	msg = append(msg, id...)
	msg = append(msg, '\n')
	return append(msg, body...)
}

// ParseMetricsReply reads a worker's METRICS answer. body aliases msg.
func ParseMetricsReply(msg []byte) (id string, body []byte, ok bool) {
	rest, found := bytes.CutPrefix(msg, []byte(MsgMetrics+" "))
	if !found {
		return "", nil, false
	}
	idb, body, found := bytes.Cut(rest, []byte("\n"))
	if !found {
		return "", nil, false
	}
	return string(idb), body, true
}
