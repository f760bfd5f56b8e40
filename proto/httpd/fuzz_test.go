package httpd

import (
	"bytes"
	"errors"
	"testing"
)

var fuzzSeeds = []string{
	wrkReq,
	browserReq,
	get + head + get10KA,
	getClose + get,
	get10,
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello" + get,
	"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nT: x\r\n\r\n" + get,
	"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
	"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
	"GET / HTTP/2.0\r\n\r\n",
	"GET / HTTP/1.1\nHost: h\n\n",
	"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n",
	"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
	"GARBAGE\r\n",
}

// FuzzParseRequest checks that ParseRequest never panics, that a success
// lies within the input, that every shorter prefix is incomplete, and that
// a decision, once made, does not change when more input follows.
func FuzzParseRequest(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var r Request
		n, err := ParseRequest(in, &r)
		switch {
		case err == nil:
			if n <= 0 || n > len(in) || n > MaxHeadSize {
				t.Fatalf("got n %d for %d bytes, want 0 < n <= min(len, %d)", n, len(in), MaxHeadSize)
			}
			if len(r.Method) == 0 || len(r.Target) == 0 {
				t.Fatalf("got method %q target %q, want both non-empty", r.Method, r.Target)
			}
			if !bytes.HasSuffix(in[:n], []byte("\r\n\r\n")) {
				t.Fatalf("got head %q, want it to end with an empty line", in[:n])
			}
			// Prefixes: all of them for short heads, a sample for long ones.
			step := 1 + n/512
			for k := 0; k < n; k += step {
				var p Request
				if m, err := ParseRequest(in[:k], &p); err != ErrIncomplete {
					t.Fatalf("prefix %d of a %d-byte head: got n %d, err %v, want ErrIncomplete", k, n, m, err)
				}
			}
		case err == ErrIncomplete:
			if len(in) >= MaxHeadSize {
				t.Fatalf("got ErrIncomplete for %d bytes, want a decision at %d", len(in), MaxHeadSize)
			}
		default:
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got error %v of type %T, want *Error", err, err)
			}
			switch e.Status {
			case 400, 431, 501, 505:
			default:
				t.Fatalf("got status %d, want 400, 431, 501 or 505", e.Status)
			}
		}
		if err != ErrIncomplete {
			longer := append(append([]byte(nil), in...), "X-More: 1\r\n\r\nGET / HTTP/1.1\r\n"...)
			var r2 Request
			n2, err2 := ParseRequest(longer, &r2)
			if n2 != n || err2 != err {
				t.Fatalf("with more input: got %d, %v, want %d, %v", n2, err2, n, err)
			}
		}
	})
}

// FuzzServe checks that serve's output and final action do not depend on
// how the input is split between reads, and that it never panics.
func FuzzServe(f *testing.F) {
	for i, s := range fuzzSeeds {
		f.Add([]byte(s), uint16(i*7), i%4 == 0)
	}
	rs := testResponses()
	f.Fuzz(func(t *testing.T, in []byte, split uint16, drain bool) {
		k := 0
		if len(in) > 0 {
			k = int(split) % (len(in) + 1)
		}
		var init connState
		if drain {
			init.flags |= sDrain
		}
		s := init
		whole, wact, wn, _ := run(&s, rs, in)
		s = init
		parts, pact, pn, _ := run(&s, rs, in[:k], in[k:])
		if !bytes.Equal(whole, parts) || wact != pact || wn != pn {
			t.Fatalf("split at %d: got output %q action %d responses %d, whole gave %q %d %d",
				k, parts, pact, pn, whole, wact, wn)
		}
		if len(in) <= 64 {
			s = init
			bw, bact, bn, _ := run(&s, rs, bytewise(string(in))...)
			if !bytes.Equal(whole, bw) || wact != bact || wn != bn {
				t.Fatalf("byte at a time: got output %q action %d responses %d, whole gave %q %d %d",
					bw, bact, bn, whole, wact, wn)
			}
		}
	})
}
