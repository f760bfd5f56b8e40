package loop

// Handler is a protocol: the loop calls it on its own thread, one call at a
// time, so a Handler needs no locks for state it keeps per loop or per
// connection.
//
// One Handler value serves every connection of one loop. Per-connection state
// goes in Conn.SetContext, usually a pointer allocated in OnOpen.
type Handler interface {
	// OnOpen is called once after a connection is accepted, before any data.
	OnOpen(c *Conn)

	// OnData is called with the connection's unconsumed input: what earlier
	// calls left unconsumed followed by what was just read. It returns how many
	// leading bytes it consumed; the loop keeps the rest and calls again when
	// more arrives. in is only valid during the call: it may be the loop's
	// shared read buffer, so a Handler must copy what it keeps.
	//
	// Responses are written with c.Write. Writes made during OnData are
	// coalesced and sent with one write(2) when OnData returns.
	OnData(c *Conn, in []byte) (consumed int)

	// OnClose is called once when the connection's fd has been closed. Writes
	// are refused from here on.
	OnClose(c *Conn, reason CloseReason)
}

// Drainer is an optional interface of a Handler. When a graceful stop begins
// (Loop.Shutdown), the loop calls OnDrain for every open connection, so the
// protocol can close idle connections at once and finish in-flight requests
// (HTTP answers the request in flight with "Connection: close"). A Handler
// without OnDrain keeps its connections until the peer closes them or the
// grace period ends.
type Drainer interface {
	OnDrain(c *Conn)
}

// Stopper is an optional interface of a Handler: OnStop is called on the
// loop's goroutine when Run is about to return, after every connection has
// closed (OnClose), so a protocol can write out what it buffers (HTTP's
// access log).
type Stopper interface {
	OnStop()
}

// HeadTimeouter is an optional interface of a Handler: OnHeadTimeout is
// called when a connection's head did not complete within
// Config.HeaderTimeout (see Conn.BeginHead), so the protocol can answer it
// (HTTP's 408 Request Timeout) before the connection closes. The handler
// may close it itself (CloseLingering, say); otherwise the loop closes it
// with ReasonHeaderTimeout once what it wrote is flushed.
type HeadTimeouter interface {
	OnHeadTimeout(c *Conn)
}

// CloseReason says why a connection closed. It labels the
// prefork_connections_closed_total series.
type CloseReason uint8

const (
	// ReasonPeer: the peer closed its side (read returned 0) and everything owed
	// to it was flushed.
	ReasonPeer CloseReason = iota
	// ReasonLocal: the handler closed the connection as part of the protocol
	// (HTTP "Connection: close", for instance).
	ReasonLocal
	// ReasonProtocolError: the handler closed the connection on bad input.
	ReasonProtocolError
	// ReasonError: a socket error (ECONNRESET, EPIPE, ...).
	ReasonError
	// ReasonTimeout: the connection was idle for longer than the idle timeout,
	// or a lingering close did not finish in time.
	ReasonTimeout
	// ReasonShutdown: the loop stopped (graceful stop cut it at its deadline,
	// the handler closed an idle connection on drain, or a fast stop).
	ReasonShutdown
	// ReasonOverflow: unconsumed input grew past Config.MaxInput.
	ReasonOverflow
	// ReasonHeaderTimeout: a request head (or frame) did not complete
	// within Config.HeaderTimeout of its first byte (slowloris).
	ReasonHeaderTimeout
	// ReasonWriteTimeout: pending output made no progress for
	// Config.WriteTimeout (a client that does not read).
	ReasonWriteTimeout

	numReasons
)

var reasonNames = [numReasons]string{
	ReasonPeer:          "peer",
	ReasonLocal:         "local",
	ReasonProtocolError: "protocol_error",
	ReasonError:         "error",
	ReasonTimeout:       "timeout",
	ReasonShutdown:      "shutdown",
	ReasonOverflow:      "overflow",
	ReasonHeaderTimeout: "header_timeout",
	ReasonWriteTimeout:  "write_timeout",
}

// String returns the reason's label value.
func (r CloseReason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// CloseReasons lists every reason, in order, for exporters that want a series
// per reason from the start.
func CloseReasons() []CloseReason {
	rs := make([]CloseReason, numReasons)
	for i := range rs {
		rs[i] = CloseReason(i)
	}
	return rs
}
