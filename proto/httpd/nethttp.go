package httpd

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
)

// NetHTTP runs a net/http Handler — http.ServeMux with its patterns, a
// third-party router, promhttp — unchanged on the loop. Each request is
// deferred and runs on a goroutine of its own with a real *http.Request
// (URL, Header, Body as an io.Reader, RemoteAddr, Host, Context cancelled
// when the client goes away or the server stops) and an http.ResponseWriter
// that implements http.Flusher (a Flush streams the body, chunked). The
// response goes back to the loop in request order.
//
// Bound the goroutines with Options.MaxInflight (--max-inflight). A handler
// that panics gets a 500 (if nothing was written yet) and a log line with
// the stack; the worker keeps serving. http.Hijacker is not implemented:
// the connection belongs to the loop.
func NetHTTP(h http.Handler, log *slog.Logger) Handler {
	if log == nil {
		log = slog.Default()
	}
	return &netHTTP{h: h, log: log}
}

type netHTTP struct {
	h   http.Handler
	log *slog.Logger
}

func (a *netHTTP) Serve(c *Ctx) {
	req, err := newHTTPRequest(c)
	if err != nil {
		c.SetStatus(400)
		_, _ = c.WriteString("Bad Request: " + err.Error() + "\n")
		return
	}
	d := c.Defer()
	req = req.WithContext(d.Context())
	go a.run(d, req)
}

func (a *netHTTP) run(d *Deferred, req *http.Request) {
	w := &responseWriter{d: d, hdr: http.Header{}}
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				a.log.Error("http handler panicked", "method", req.Method, "uri", req.RequestURI,
					"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			}
			if !w.wrote {
				w.d.reset()
				w.d.SetStatus(500)
				_ = w.d.SetContentType("text/plain; charset=utf-8")
				_, _ = w.d.WriteString("Internal Server Error\n")
				w.wrote = true
			}
		}
		w.finish()
	}()
	a.h.ServeHTTP(w, req)
}

// newHTTPRequest copies what the handler's goroutine needs out of c, which
// the loop reuses once Serve returns.
func newHTTPRequest(c *Ctx) (*http.Request, error) {
	target := string(c.Target())
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, err
	}
	hdr := make(http.Header, 8)
	c.VisitHeaders(func(name, value []byte) bool {
		k := http.CanonicalHeaderKey(string(name))
		if k == "Host" {
			return true // Request.Host, as net/http does
		}
		hdr[k] = append(hdr[k], string(value))
		return true
	})
	req := &http.Request{
		Method:     string(c.Method()),
		URL:        u,
		Proto:      c.Proto(),
		ProtoMajor: 1,
		ProtoMinor: c.ProtoMinor(),
		Header:     hdr,
		Host:       string(c.Host()),
		RequestURI: target,
		Close:      !c.KeepAlive(),
		Body:       http.NoBody,
	}
	if u.Host != "" {
		req.Host = u.Host
	}
	if b := c.Body(); len(b) > 0 {
		req.Body = io.NopCloser(bytes.NewReader(bytes.Clone(b)))
		req.ContentLength = int64(len(b))
	} else if c.req.Flags&FlagChunked == 0 && c.req.Flags&FlagContentLength == 0 {
		req.ContentLength = 0
	}
	if c.req.Flags&FlagChunked != 0 {
		req.TransferEncoding = []string{"chunked"}
	}
	if ra, err := c.RemoteAddr(); err == nil {
		req.RemoteAddr = ra.String()
	}
	return req, nil
}

// responseWriter is the http.ResponseWriter over a Deferred.
type responseWriter struct {
	d     *Deferred
	hdr   http.Header
	wrote bool // WriteHeader done (the head is decided)
	sniff bool // no Content-Type was set: sniff it from the first write
}

func (w *responseWriter) Header() http.Header { return w.hdr }

func (w *responseWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	if code < 200 {
		return // interim responses (103 Early Hints) are not sent
	}
	w.wrote = true
	w.d.SetStatus(code)
	for k, vs := range w.hdr {
		for _, v := range vs {
			// Framing headers (Content-Length, Connection...) are the
			// server's; a value with CR/LF is refused: both are dropped,
			// as net/http drops invalid header fields.
			_ = w.d.AddHeader(k, v)
		}
	}
	if _, ok := w.hdr["Content-Type"]; !ok && bodyAllowed(code) {
		w.sniff = true
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.sniff && len(p) > 0 {
		w.sniff = false
		_ = w.d.SetContentType(http.DetectContentType(p))
	}
	if !bodyAllowed(w.d.status) {
		return 0, http.ErrBodyNotAllowed
	}
	return w.d.Write(p)
}

func (w *responseWriter) WriteString(s string) (int, error) { return w.Write([]byte(s)) }

// Flush sends what was written so far (http.Flusher).
func (w *responseWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	w.d.Flush()
}

func (w *responseWriter) finish() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	w.d.Done()
}

var (
	_ http.Flusher    = (*responseWriter)(nil)
	_ io.StringWriter = (*responseWriter)(nil)
)
