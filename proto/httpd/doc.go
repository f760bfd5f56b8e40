// Package httpd is the HTTP/1.1 and HTTP/1.0 server protocol of prefork, and
// its handler API. A Server is a loop.Handler: it parses requests, calls a
// Handler for each one on the loop's goroutine, and writes the responses.
// Without a Handler it serves Greeting, which answers every request with
//
//	HTTP/1.1 200 OK
//	Server: prefork
//	Date: <IMF-fixdate>
//	Content-Type: text/plain
//	Content-Length: 13
//
//	Hello, World!
//
// # Handlers
//
// A Handler's Serve gets a *Ctx, reused for every request (no allocation
// per request): the request (Method, Path and RawPath, Query, Header and
// VisitHeaders, Host, RemoteAddr, Proto, KeepAlive, Body) and, embedded, the
// Response it fills (SetStatus, SetHeader/AddHeader/DelHeader, Write). The
// server adds Server, Date, Content-Length and Connection; a handler's own
// header values are checked (no CR, LF or other controls, names are tokens,
// the framing headers are refused), so it cannot inject header lines. HEAD
// is answered without a body whatever the handler wrote; 204 and 304
// without a length. Byte slices a Ctx returns are valid until Serve returns.
//
// Serve must not block. Work that waits defers the response: Ctx.Defer
// returns a Deferred whose owner (any goroutine) fills it and calls Done,
// or Flush to stream it in chunks; the completion is posted to the loop
// (Loop.Post, the eventfd) and written there. Responses to requests
// pipelined behind a deferred one wait for it, so answers leave in request
// order; a Deferred's Context is cancelled when the client goes away. Router
// maps method and path patterns with {name} parameters to handlers;
// FileServer serves a directory (Root) with sendfile; NetHTTP runs any
// net/http Handler.
//
// # Structure
//
// ParseRequest is a socket-free, allocation-free, single-pass parser of a
// request head. connState.serve runs one connection's protocol over a byte
// slice (heads, bodies, pipelining), calls the handler and appends the
// responses to another; Server.OnData is a thin wrapper around it, so all
// the responses to the requests of one read leave in one write(2). The Date
// is formatted at most once per second, when the loop's clock has moved to
// another second.
//
// # Connections
//
// HTTP/1.1 connections stay open unless the request says "Connection:
// close"; HTTP/1.0 connections close after the response unless it says
// "Connection: keep-alive" (answered with "Connection: keep-alive").
// Connection tokens are comma-separated and case-insensitive. Pipelined
// requests are answered in order. A client that sends "Expect: 100-continue"
// with a body gets "100 Continue" first. After a "Connection: close"
// response the connection closes (loop.ReasonLocal) once the response is
// flushed; when the client had already pipelined more input behind that
// request, the close lingers, so the unread input does not make the kernel
// reset the connection before the client has read the response.
//
// # Bodies
//
// A body announced by Content-Length or "Transfer-Encoding: chunked" is
// buffered whole before the handler runs: the request stays in the loop's
// input until it has all arrived (the chunked framing already checked is
// not checked again), then a Content-Length body is handed over in place and
// a chunked one de-chunked into a reused buffer. Options.MaxBody (--max-body,
// default 1 MiB) bounds it: a larger Content-Length is answered 413 at once
// (without "100 Continue"), a chunked body as soon as its chunk sizes pass
// the limit. Chunk sizes are hex, chunk extensions are allowed and ignored,
// and the trailer section is checked like header fields (at most 8 KiB) and
// ignored. A client that sent "Expect: 100-continue" gets "100 Continue"
// when the server waits for the body.
//
// # Limits and errors
//
// A request head (request line, fields, final CRLF) may be 8 KiB
// (MaxHeadSize) long; a longer one gets 431, a body over MaxBody 413.
// Malformed input gets 400: a
// request line without exactly one SP between method, target and version, a
// method that is not a token, controls in the target, a version not of the
// form HTTP/D.D, a field name that is not a token or is followed by
// whitespace before the colon, a field without a colon, obsolete line
// folding, control characters in a value, a bare CR, an HTTP/1.1 request
// without Host or with two, and malformed chunk framing. A well-formed
// version other than 1.x gets 505. Every error response has a short
// text/plain body and "Connection: close", and the connection then closes
// lingering (loop.Conn.CloseLingering): the server stops writing but reads
// and discards input for a while, so a client still sending does not get a
// reset that would destroy the response before it is read. Requests that
// came before the bad one are answered first.
//
// # Line endings
//
// Lines must end with CRLF; a bare LF is a 400, although RFC 9112 §2.2
// allows accepting it and nginx does. Every real client sends CRLF, and
// when a proxy in front of this server and the server disagree about where
// a line ends, a request can be smuggled past the proxy: lenient line
// endings in heads and in chunk lines are how recent smuggling attacks
// worked. Rejecting costs nothing for real clients and removes the whole
// class. Empty lines before a request line are skipped (RFC 9112 §2.2).
//
// # Smuggling guards
//
// Request smuggling needs two parsers that frame a body differently, so any
// request whose framing could be read two ways is refused rather than
// guessed at:
//
//   - Content-Length and Transfer-Encoding together: 400 (RFC 9112 §6.1
//     allows preferring chunked, but a proxy that preferred the length would
//     disagree).
//   - Content-Length that is not all digits, overflows int64, or appears
//     twice with different values: 400. "5, 5" lists are refused too.
//   - Transfer-Encoding other than exactly "chunked" (case-insensitive),
//     including "gzip, chunked" and two Transfer-Encoding fields: 501, since
//     no other coding is implemented.
//   - Transfer-Encoding in an HTTP/1.0 request: 400, since HTTP/1.0 has no
//     chunked coding and a 1.0 proxy would frame the body differently.
//   - Bare CR or LF anywhere in a head or chunk framing: 400.
//
// # Draining
//
// Handler implements loop.Drainer: when the worker drains (reload, scale
// down, graceful stop), every connection ends after the request in flight
// or, if there is none, after the next request, which is answered with
// "Connection: close". An idle keep-alive connection, or a new one that has
// not sent its first request yet, is closed only once it has been quiet for
// the loop's DrainQuiet (1 s, loop.Conn.CloseWhenQuiet): closing it at once
// would fail a request already on its way, and the client could not tell
// that from a server that died under it. Input that completes a request once
// the loop is draining (Loop.Draining), even before OnDrain reaches the
// connection, is answered the same way.
//
// # Timeouts and pipelining
//
// A request head must arrive whole within the loop's HeaderTimeout
// (--header-timeout, 10 s) of its first bytes, or it is answered 408 and the
// connection closes lingering (Server.OnHeadTimeout); a body is bounded by
// the idle timeout between reads. Pipelined requests are answered only
// while the connection's output is under the loop's high-water mark
// (loop.Conn.OutputRoom); the rest wait in the input until the client has
// read what went before (loop.Conn.Yield), so a client that pipelines
// without reading cannot make the server build answers without bound.
package httpd
