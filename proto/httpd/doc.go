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
// the limit. Chunk sizes are hex, chunk extensions are checked (Limits and
// errors) and ignored, and the trailer section is checked like header fields (at most 8 KiB) and
// ignored. A client that sent "Expect: 100-continue" gets "100 Continue"
// when the server waits for the body.
//
// # Limits and errors
//
// A request head (request line, fields, final CRLF) may be 8 KiB
// (MaxHeadSize) long; a longer one gets 431, or 414 when the limit falls in
// the request-target (RFC 9112 §3), a body over MaxBody 413. Every error
// response has a short text/plain body and "Connection: close", and the
// connection then closes lingering (loop.Conn.CloseLingering): the server
// stops writing but reads and discards input for a while, so a client
// still sending does not get a reset that would destroy the response
// before it is read. Requests that came before the bad one are answered
// first. conformance_test.go has one row per rule below, named by its RFC
// section.
//
// The server refuses what RFC 9112 and RFC 9110 say a server must refuse,
// and where they let it choose, it chooses to refuse: a request that two
// parsers could read two ways is how requests are smuggled past proxies,
// caches poisoned and access rules bypassed, and every real client sends
// the strict form anyway.
//
//   - 400 for a malformed request line: not exactly one SP between method,
//     target and version (§3), a method that is not a token, a version not
//     of the form HTTP/D.D (§2.3).
//   - 501 for a method that is not in the IANA HTTP Method Registry (RFC
//     9110 §9.1 says SHOULD), "get" included since methods are
//     case-sensitive, and at once for a method longer than any registered
//     one (UPDATEREDIRECTREF, 17 bytes) rather than after 8 KiB (§3). A
//     registered method reaches the handler, which says whether the
//     resource allows it (Router answers 405 with Allow); TRACE too, which
//     no handler here reflects.
//   - 501 for CONNECT: the server is no proxy and opens no tunnels. 405
//     would be "known, not allowed for this resource" and must carry an
//     Allow field listing what the resource takes, which only the handler
//     knows; 501 says the server does not implement the method at all,
//     which is the truth, and needs no Allow.
//   - 400 for a request-target in no form this server serves (§3.2):
//     origin-form ("/p?q") is the common one; absolute-form
//     ("http://h/p", §3.2.2) is accepted and its authority replaces Host;
//     "*" only with OPTIONS (§3.2.4); authority-form is CONNECT's (§3.2.3).
//     An absolute-form URI must have the http scheme (https would need TLS,
//     RFC 9110 §4.2.2; other schemes are for proxies), a host, and no
//     userinfo (RFC 9110 §4.2.4).
//   - 400 for target bytes RFC 3986 excludes and no client sends
//     unescaped: controls, SP, DEL, '"', '<', '>', '#' (a fragment is never
//     sent), every byte >= 0x80 (raw UTF-8, overlong forms of RFC 3629 §3
//     included: clients percent-encode), and a '%' not followed by two hex
//     digits (RFC 3986 §2.1: decoders disagree on what it means). '[', ']',
//     '\', '^', '`', '{', '|' and '}' are excluded by RFC 3986 too but
//     accepted: browsers following the WHATWG URL Standard send them
//     unescaped ("?a[]=1"), and refusing them would refuse real requests.
//   - 400 for an HTTP/1.1 request without Host, any request with two Host
//     lines (§3.2), and a Host that is not uri-host[:port] (§3.2, RFC 3986
//     §3.2.2): empty (an http URI's host is never empty, RFC 9110 §4.2.1,
//     so "Host:" is refused in HTTP/1.0 too), with userinfo ("user@h"), a
//     path ("h/p"), spaces or bytes >= 0x80, a port that is not digits, an
//     IP-literal that is not an IPv6 or IPvFuture address, or a ','
//     although RFC 3986 allows it in a reg-name: "a, b" is how two Host
//     lines read once combined, and no DNS name or address has one.
//   - 400 for a field name that is not a token or is followed by whitespace
//     before the colon (§5.1), a field without a colon, obsolete line
//     folding (§5.2 lets a server unfold it instead), whitespace before the
//     first field (§2.2 lets a server skip such lines instead), a control
//     character in a value (RFC 9110 §5.5), a bare CR.
//   - 400 for malformed chunk framing, chunk extensions included, which must
//     be *( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )
//     (§7.1.1): a bare ';', a name that is not a token, whitespace before
//     the CRLF are refused although the extensions themselves are ignored.
//   - 417 for an Expect field with any expectation but 100-continue (RFC
//     9110 §10.1.1 allows ignoring it, but the client asked for something
//     the server cannot do; the request is well-formed, so ParseRequest
//     accepts it and the server answers). 100-continue in HTTP/1.0 is
//     ignored, as §10.1.1 requires.
//   - 505 for a well-formed version other than 1.x (RFC 9110 §15.6.6),
//     the HTTP/2 preface ("PRI * HTTP/2.0") included. HTTP/1.2 and up are
//     served as 1.1 (RFC 9110 §2.5).
//
// A chunk size or Content-Length larger than MaxBody is 413 as soon as its
// digits say so, overflowing ones included: the server never parses the
// number that would overflow.
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
//     twice with different values: 400 (RFC 9112 §6.3). "5, 5" lists are
//     refused too, although RFC 9110 §8.6 allows reading them as 5.
//   - Transfer-Encoding (several fields are one list; empty elements are
//     ignored, RFC 9110 §5.6.1) whose final coding is not chunked, chunked
//     twice or with parameters, or a malformed list: 400 and close (RFC
//     9112 §6.3), not 501: the body's length cannot be known. A list with
//     another coding before a final chunked ("gzip, chunked"): 501 (RFC 9112
//     §6.1), since no other coding is implemented.
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
