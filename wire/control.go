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
//	HB <n>     heartbeat, sent from the loop thread every Spec.Heartbeat,
//	           with the number of open connections
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

// Heartbeat is the HB message with the open connection count.
func Heartbeat(conns int) []byte {
	return strconv.AppendInt([]byte(MsgHeartbeat+" "), int64(conns), 10)
}

// ParseHeartbeat reads an HB message; ok is false for any other message.
// A bare "HB" (no count) is a heartbeat with an unknown count of -1.
func ParseHeartbeat(msg []byte) (conns int, ok bool) {
	if string(msg) == MsgHeartbeat {
		return -1, true
	}
	n, found := bytes.CutPrefix(msg, []byte(MsgHeartbeat+" "))
	if !found {
		return 0, false
	}
	v, err := strconv.Atoi(string(n))
	if err != nil || v < 0 {
		return -1, true
	}
	return v, true
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
