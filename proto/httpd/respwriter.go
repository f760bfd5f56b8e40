package httpd

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// Response is what a handler answers: a status, header fields and a body.
// Ctx embeds one for the response written when Serve returns; a Deferred
// has its own.
type Response struct {
	status int
	hdr    []byte // header field lines, "Name: value\r\n" each
	body   []byte
	// A file body (Ctx.SendFile), after body: fileLen bytes of fileFD
	// from fileOff.
	hasFile bool
	fileFD  int
	fileOff int64
	fileLen int64
}

// bodyLen is the length of the body: bytes written, and the file.
func (r *Response) bodyLen() int64 { return int64(len(r.body)) + r.fileLen }

// Errors from the header setters. A refused header is not set; the response
// goes out without it.
var (
	ErrInvalidHeader  = errors.New("httpd: header name is not a token, or its value holds CR, LF or another control byte")
	ErrReservedHeader = errors.New("httpd: Content-Length, Transfer-Encoding, Connection, Date and Server are the server's to set")
)

func (r *Response) reset() {
	r.status = 200
	r.hdr = r.hdr[:0]
	r.body = r.body[:0]
	r.hasFile, r.fileFD, r.fileOff, r.fileLen = false, -1, 0, 0
}

// SetStatus sets the status code (default 200). A code outside 200..999 is
// a handler bug and becomes 500 (interim 1xx responses are the server's).
func (r *Response) SetStatus(code int) {
	if code < 200 || code > 999 {
		code = 500
	}
	r.status = code
}

// Status returns the status code set so far.
func (r *Response) Status() int { return r.status }

// SetHeader sets a header field, replacing any of that name.
func (r *Response) SetHeader(name, value string) error {
	if err := checkHeader(name, value); err != nil {
		return err
	}
	r.DelHeader(name)
	r.appendHeader(name, value)
	return nil
}

// AddHeader adds a header field, keeping any of that name (Set-Cookie).
func (r *Response) AddHeader(name, value string) error {
	if err := checkHeader(name, value); err != nil {
		return err
	}
	r.appendHeader(name, value)
	return nil
}

// Field is a response header field checked once, for handlers that send
// the same field with many responses: AddField appends it without checking
// it again.
type Field struct{ line string }

// NewField checks a header field as SetHeader does and prepares it.
func NewField(name, value string) (Field, error) {
	if err := checkHeader(name, value); err != nil {
		return Field{}, err
	}
	return Field{line: name + ": " + value + "\r\n"}, nil
}

// MustField is NewField for fields known at compile time; it panics on an
// invalid one.
func MustField(name, value string) Field {
	f, err := NewField(name, value)
	if err != nil {
		panic(fmt.Sprintf("httpd.MustField(%q, %q): %v", name, value, err))
	}
	return f
}

// AddField adds a prepared field, keeping any of that name.
func (r *Response) AddField(f Field) { r.hdr = append(r.hdr, f.line...) }

// SetContentType sets Content-Type.
func (r *Response) SetContentType(value string) error { return r.SetHeader("Content-Type", value) }

// DelHeader removes every header field named name (case-insensitive).
func (r *Response) DelHeader(name string) {
	h := r.hdr
	out := h[:0]
	for len(h) > 0 {
		end := indexByte(h, '\n') + 1
		line := h[:end]
		h = h[end:]
		colon := indexByte(line, ':')
		if colon == len(name) && equalFoldString(line[:colon], name) {
			continue
		}
		out = append(out, line...)
	}
	r.hdr = out
}

// ResponseHeader returns the value of the first response header field named
// name set so far, or nil.
func (r *Response) ResponseHeader(name string) []byte {
	var val []byte
	visitFields(r.hdr, func(n, v []byte) bool {
		if len(n) == len(name) && equalFoldString(n, name) {
			val = v
			return false
		}
		return true
	})
	return val
}

func (r *Response) appendHeader(name, value string) {
	r.hdr = append(r.hdr, name...)
	r.hdr = append(r.hdr, ": "...)
	r.hdr = append(r.hdr, value...)
	r.hdr = append(r.hdr, "\r\n"...)
}

// checkHeader refuses what would inject header lines or conflict with the
// framing the server writes.
func checkHeader(name, value string) error {
	if len(name) == 0 {
		return ErrInvalidHeader
	}
	for i := 0; i < len(name); i++ {
		if !tchar[name[i]] {
			return ErrInvalidHeader
		}
	}
	for i := 0; i < len(value); i++ {
		if !valueOK[value[i]] {
			return ErrInvalidHeader
		}
	}
	switch len(name) {
	case 4:
		if equalFoldString([]byte(name), "date") {
			return ErrReservedHeader
		}
	case 6:
		if equalFoldString([]byte(name), "server") {
			return ErrReservedHeader
		}
	case 10:
		if equalFoldString([]byte(name), "connection") {
			return ErrReservedHeader
		}
	case 14:
		if equalFoldString([]byte(name), "content-length") {
			return ErrReservedHeader
		}
	case 17:
		if equalFoldString([]byte(name), "transfer-encoding") {
			return ErrReservedHeader
		}
	}
	return nil
}

// Write appends p to the body.
func (r *Response) Write(p []byte) (int, error) {
	r.body = append(r.body, p...)
	return len(p), nil
}

// WriteString appends s to the body.
func (r *Response) WriteString(s string) (int, error) {
	r.body = append(r.body, s...)
	return len(s), nil
}

// SetBody replaces the body with a copy of p.
func (r *Response) SetBody(p []byte) { r.body = append(r.body[:0], p...) }

// BodyLen returns the length of the body written so far.
func (r *Response) BodyLen() int { return len(r.body) }

// bodyAllowed reports whether a response of this status has a body and a
// Content-Length (RFC 9110 §6.4.1, §8.6: not 204 or 304).
func bodyAllowed(status int) bool { return status != 204 && status != 304 }

// appendStatusLine appends "HTTP/1.1 CODE REASON\r\n".
func appendStatusLine(out []byte, code int) []byte {
	switch code {
	case 200:
		return append(out, "HTTP/1.1 200 OK\r\n"...)
	case 404:
		return append(out, "HTTP/1.1 404 Not Found\r\n"...)
	}
	out = append(out, "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(code), 10)
	out = append(out, ' ')
	out = append(out, http.StatusText(code)...)
	return append(out, "\r\n"...)
}
