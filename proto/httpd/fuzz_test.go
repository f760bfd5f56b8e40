package httpd

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
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
			case 400, 414, 431, 501, 505:
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

// The reference chunked-body reader's verdicts.
type refVerdict uint8

const (
	refDone            refVerdict = iota // the body and its trailer section ended
	refMore                              // the input ended; the body may still be valid
	refBad                               // malformed (400)
	refTooLarge                          // a chunk size or the sum of them exceeds maxBody (413)
	refTrailerTooLarge                   // the trailer section exceeds MaxHeadSize (431)
)

// refChunked reads a chunked body (RFC 9112 §7.1) over the whole input, by
// recursive descent, as the server documents it: chunk-size 1*HEXDIG, then
// either CRLF or BWS ";" extension bytes (field-value bytes, ignored) CRLF;
// chunk-data and its CRLF; a last-chunk of size 0; trailer fields
// (token ":" field-value bytes CRLF) and the final CRLF. A size above maxBody,
// or sizes adding up to more, is refTooLarge as soon as its digit or its line
// says so; the trailer section, final CRLF included, may hold MaxHeadSize
// bytes. It returns where the body ends and its data.
// refChunkExt reads the chunk extensions starting at in[i] (a ';') up to the
// CR, by RFC 9112 §7.1.1's grammar, one element at a time:
//
//	chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//	chunk-ext-val = token / quoted-string
//
// It returns the index of the CR and refDone, refMore when the input ends
// before anything is wrong, or refBad.
func refChunkExt(in []byte, i int) (int, refVerdict) {
	isTok := func(c byte) bool { // RFC 9110 §5.6.2 tchar
		return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c != 0 && strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
	}
	bws := func() {
		for i < len(in) && (in[i] == ' ' || in[i] == '\t') {
			i++
		}
	}
	token := func() bool {
		k := i
		for i < len(in) && isTok(in[i]) {
			i++
		}
		return i > k
	}
	for {
		if i == len(in) {
			return i, refMore
		}
		if in[i] != ';' {
			return i, refBad
		}
		i++
		bws()
		if !token() {
			if i == len(in) {
				return i, refMore
			}
			return i, refBad
		}
		bws()
		if i < len(in) && in[i] == '=' {
			i++
			bws()
			if i == len(in) {
				return i, refMore
			}
			if in[i] == '"' {
				for i++; ; i++ {
					if i == len(in) {
						return i, refMore
					}
					c := in[i]
					if c == '"' {
						i++
						break
					}
					if c == '\\' {
						if i++; i == len(in) {
							return i, refMore
						}
						c = in[i]
						if c < 0x20 && c != '\t' || c == 0x7f {
							return i, refBad
						}
						continue
					}
					if c < 0x20 && c != '\t' || c == 0x7f {
						return i, refBad
					}
				}
			} else if !token() {
				return i, refBad
			}
			if i < len(in) && (in[i] == ' ' || in[i] == '\t') {
				bws() // only another ';' may follow
				if i == len(in) {
					return i, refMore
				}
				if in[i] != ';' {
					return i, refBad
				}
				continue
			}
		}
		if i == len(in) {
			return i, refMore
		}
		if in[i] == '\r' {
			if in[i-1] == ' ' || in[i-1] == '\t' {
				return i, refBad // whitespace before the CRLF
			}
			return i, refDone
		}
	}
}

func refChunked(in []byte, maxBody int64) (end int, data []byte, v refVerdict) {
	i := 0
	// at reports whether a byte is available at i.
	at := func() bool { return i < len(in) }
	crlf := func() refVerdict {
		for _, want := range []byte("\r\n") {
			if !at() {
				return refMore
			}
			if in[i] != want {
				return refBad
			}
			i++
		}
		return refDone
	}
	var total int64
	for {
		var size int64
		digits := 0
		for ; at() && strings.IndexByte("0123456789abcdefABCDEF", in[i]) >= 0; i, digits = i+1, digits+1 {
			d, _ := strconv.ParseInt(string(in[i]), 16, 64)
			if size = size*16 + d; size > maxBody {
				return 0, nil, refTooLarge
			}
		}
		if !at() {
			return 0, data, refMore
		}
		if digits == 0 {
			return 0, nil, refBad
		}
		ws := i
		for at() && (in[i] == ' ' || in[i] == '\t') {
			i++
		}
		if !at() {
			return 0, data, refMore
		}
		if in[i] == ';' {
			j, v := refChunkExt(in, i)
			if v != refDone {
				return 0, data, v
			}
			i = j
		} else if i > ws {
			return 0, nil, refBad // white space not followed by an extension
		}
		if v := crlf(); v != refDone {
			return 0, data, v
		}
		if size == 0 {
			break
		}
		if total += size; total > maxBody {
			return 0, nil, refTooLarge
		}
		k := min(int64(len(in)-i), size)
		data = append(data, in[i:i+int(k)]...)
		if i += int(k); k < size {
			return 0, data, refMore
		}
		if v := crlf(); v != refDone {
			return 0, data, v
		}
	}
	// The trailer section: each byte counted before it is looked at.
	start := i
	next := func() (byte, refVerdict) {
		if !at() {
			return 0, refMore
		}
		if i-start >= MaxHeadSize {
			return 0, refTrailerTooLarge
		}
		i++
		return in[i-1], refDone
	}
	for {
		c, v := next()
		if v != refDone {
			return 0, data, v
		}
		if c == '\r' {
			if c, v = next(); v != refDone {
				return 0, data, v
			}
			if c != '\n' {
				return 0, nil, refBad
			}
			return i, data, refDone
		}
		// token ":" field-value CRLF
		if !tokenChar(c) {
			return 0, nil, refBad // the name is at least one token character
		}
		for c != ':' {
			if !tokenChar(c) {
				return 0, nil, refBad
			}
			if c, v = next(); v != refDone {
				return 0, data, v
			}
		}
		for {
			if c, v = next(); v != refDone {
				return 0, data, v
			}
			if c == '\r' {
				break
			}
			if c < 0x20 && c != '\t' || c == 0x7f {
				return 0, nil, refBad
			}
		}
		if c, v = next(); v != refDone {
			return 0, data, v
		}
		if c != '\n' {
			return 0, nil, refBad
		}
	}
}

// tokenChar is RFC 9110's tchar, spelled out.
func tokenChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// verdict maps the server's chunked checker results to the reference's.
func verdict(done bool, err *Error) refVerdict {
	switch {
	case err == ErrBodyTooLarge:
		return refTooLarge
	case err == ErrTrailerTooLarge:
		return refTrailerTooLarge
	case err == ErrBadChunk:
		return refBad
	case err != nil:
		return 255
	case done:
		return refDone
	}
	return refMore
}

// FuzzChunked checks the chunked-body decoder (the checker serve runs as
// input arrives, decodeChunked, and the streaming BodyFunc path) against
// refChunked: the same verdict, the same end, the same data, however the
// input is split between reads.
func FuzzChunked(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"5;a=b\r\nhello\r\n0;x\r\nT: x\r\nU:\r\n\r\n",
		"5 ;a\r\nhello\r\n000\r\n\r\n",
		"5 \r\nhello\r\n0\r\n\r\n",
		"5\nhello\r\n0\r\n\r\n",
		"5\r\nhelloXY0\r\n\r\n",
		"ffffffffffffffffffff\r\n",
		"10000000000000000\r\n",
		"00000000000000000000000000001\r\nx\r\n0\r\n\r\n",
		"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n",
		"1\r\na\r\n0\r\nbad trailer\r\n\r\n",
		"0\r\n\r",
		"\r\n",
		"5;\x00\r\nhello\r\n0\r\n\r\n",
		"5\r\nhel",
	} {
		f.Add([]byte(s), uint16(3), uint32(1<<20))
	}
	f.Add([]byte("4\r\nabcd\r\n4\r\nefgh\r\n0\r\n\r\n"), uint16(9), uint32(7))
	f.Add([]byte("0\r\n"+strings.Repeat("a:", MaxHeadSize/2)+"\r\n\r\n"), uint16(100), uint32(5))
	f.Fuzz(func(t *testing.T, in []byte, split uint16, max uint32) {
		maxBody := int64(max % (1<<30 + 1))
		fresh := func() *connState { return &connState{state: stChunkSize} }

		s := fresh()
		end, done, err := s.chunked(in, 0, maxBody)
		got := verdict(done, err)
		refEnd, refData, want := refChunked(in, maxBody)
		if got != want {
			t.Fatalf("chunked(%q, max %d): got end %d, done %v, err %v; reference says %d", in, maxBody, end, done, err, want)
		}
		if done {
			if end != refEnd || end > len(in) {
				t.Fatalf("chunked(%q): body ends at %d, reference at %d", in, end, refEnd)
			}
			if data := decodeChunked(nil, in[:end]); !bytes.Equal(data, refData) {
				t.Fatalf("decodeChunked(%q): got %q, want %q", in[:end], data, refData)
			}
			if int64(len(refData)) > maxBody {
				t.Fatalf("chunked(%q): %d bytes of data accepted, max %d", in, len(refData), maxBody)
			}
		} else if err == nil && end != len(in) {
			t.Fatalf("chunked(%q): incomplete, but stopped at %d of %d", in, end, len(in))
		}

		// Split as serve sees it: the first read, then the whole input from
		// where the checker stopped.
		k := int(split) % (len(in) + 1)
		s = fresh()
		end1, done1, err1 := s.chunked(in[:k], 0, maxBody)
		if err1 == nil && !done1 {
			end1, done1, err1 = s.chunked(in, end1, maxBody)
		}
		if v := verdict(done1, err1); v != got || done && end1 != end {
			t.Fatalf("chunked(%q) split at %d: got end %d, verdict %d; whole: end %d, verdict %d", in, k, end1, v, end, got)
		}

		// Streaming: the data handed to a BodyFunc, in pieces.
		var streamed []byte
		s = fresh()
		deliver := func(p []byte, _ error) { streamed = append(streamed, p...) }
		end2, done2, err2 := s.chunkedTo(in[:k], 0, maxBody, deliver)
		if err2 == nil && !done2 {
			end2, done2, err2 = s.chunkedTo(in, end2, maxBody, deliver)
		}
		if v := verdict(done2, err2); v != got || done && end2 != end {
			t.Fatalf("chunkedTo(%q) split at %d: got end %d, verdict %d; whole: end %d, verdict %d", in, k, end2, v, end, got)
		}
		if want != refBad && want != refTooLarge && !bytes.Equal(streamed, refData) {
			t.Fatalf("chunkedTo(%q): streamed %q, reference data %q", in, streamed, refData)
		}
	})
}

// refDigits reads 1*DIGIT as an int64; ok is false for anything else,
// a sign or an overflow included.
func refDigits(s string) (int64, bool) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// refRange is the reference reading of a Range header for a file of size
// bytes (RFC 9110 §14.1.2, §14.2), in the subset the server honours: one
// int-range (first-pos "-" [last-pos]) or suffix-range ("-" suffix-length)
// of the "bytes" unit, OWS around the value and the range. Several ranges,
// another unit, a malformed range and a number past int64 are ignored
// (200: the whole file, as §14.2 allows).
func refRange(v string, size int64) (start, end int64, status int) {
	spec, ok := strings.CutPrefix(strings.Trim(v, " \t"), "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, 0, 200
	}
	first, last, ok := strings.Cut(strings.Trim(spec, " \t"), "-")
	if !ok {
		return 0, 0, 200
	}
	if first == "" {
		n, ok := refDigits(last)
		switch {
		case !ok:
			return 0, 0, 200
		case n == 0 || size == 0:
			return 0, 0, 416 // nothing to send
		case n >= size:
			return 0, size - 1, 206
		}
		return size - n, size - 1, 206
	}
	a, ok := refDigits(first)
	if !ok {
		return 0, 0, 200
	}
	b := size - 1
	if last != "" {
		if b, ok = refDigits(last); !ok || b < a {
			return 0, 0, 200 // invalid: last-pos before first-pos
		}
		b = min(b, size-1)
	}
	if a >= size {
		return 0, 0, 416
	}
	return a, b, 206
}

// FuzzRange checks parseRange against refRange, and that a 206 it answers
// lies within the file.
func FuzzRange(f *testing.F) {
	for _, s := range []string{"bytes=0-0", "bytes=0-", "bytes=-1", "bytes=-0", "bytes=5-3", "bytes=0-99999999999999999999",
		"bytes=+1-2", "bytes=-+5", "bytes=--5", "bytes=1-+2", " bytes=1-2 ", "bytes= 1-2", "bytes=1 -2", "Bytes=0-1",
		"bytes=0-1,2-3", "items=0-1", "bytes=1-2-3", "bytes=-", "bytes=\u00a00-1", "bytes=0-1\u0085", "bytes=9223372036854775807-"} {
		f.Add([]byte(s), int64(100))
	}
	f.Add([]byte("bytes=0-"), int64(0))
	f.Add([]byte("bytes=-5"), int64(3))
	f.Fuzz(func(t *testing.T, v []byte, size int64) {
		if size < 0 {
			size = -(size + 1)
		}
		start, end, status := parseRange(v, size)
		ws, we, wstatus := refRange(string(v), size)
		if status != wstatus || status == 206 && (start != ws || end != we) {
			t.Fatalf("parseRange(%q, %d): got %d-%d %d, reference %d-%d %d", v, size, start, end, status, ws, we, wstatus)
		}
		if status == 206 && !(0 <= start && start <= end && end < size) {
			t.Fatalf("parseRange(%q, %d): 206 for %d-%d, outside the file", v, size, start, end)
		}
	})
}

// refEntityTags is If-None-Match's grammar (RFC 9110 §13.1.2, §8.8.3, and
// §5.6.1's list rule, empty elements allowed): a list of entity-tags,
// [W/] DQUOTE *etagc DQUOTE, etagc being %x21 / %x23-7E / obs-text.
var (
	refTag     = `(?:W/)?"[\x21\x23-\x7e]*"`
	refTagList = regexp.MustCompile(`^[ \t]*(?:,[ \t]*)*` + refTag + `(?:[ \t]*,(?:[ \t]*` + refTag + `)?)*[ \t]*$`)
	refOneTag  = regexp.MustCompile(`(?:W/)?("[\x21\x23-\x7e]*")`)
)

// refNoneMatch is the weak comparison a cache validation needs: the value
// "*", or a well-formed list naming etag, weak or strong. A malformed value
// matches nothing (the full response is always safe).
func refNoneMatch(list, etag string) bool {
	// regexp reads UTF-8, not bytes: obs-text becomes '~', another etagc
	// that the server's tags (hex digits and '-') never hold.
	b := []byte(strings.Trim(list, " \t"))
	for i, c := range b {
		if c >= 0x80 {
			b[i] = '~'
		}
	}
	v := string(b)
	if v == "*" {
		return true
	}
	if !refTagList.MatchString(v) {
		return false
	}
	for _, m := range refOneTag.FindAllStringSubmatch(v, -1) {
		if m[1] == etag {
			return true
		}
	}
	return false
}

// FuzzIfNoneMatch checks etagListMatches (If-None-Match, which answers 304)
// against refNoneMatch, and ifRangeHolds against If-Range's rule: only this
// strong entity-tag, or this exact Last-Modified date.
func FuzzIfNoneMatch(f *testing.F) {
	etag := `"17d0a3b2c-1f"`
	for _, s := range []string{etag, "W/" + etag, "*", ` "x", ` + etag + ` `, `"x",,` + etag, `"a,"17d0a3b2c-1f"`,
		`"x", *`, `17d0a3b2c-1f`, `W/"x", W/` + etag, ``, `,`, `"`, `""`, `W/`, `"x" ` + etag, `"\x00",` + etag,
		`"x"` + etag, "\"x\",\u00a0" + etag} {
		f.Add([]byte(s), int64(0x17d0a3b2c), int64(0x1f))
	}
	f.Fuzz(func(t *testing.T, list []byte, mtime, size int64) {
		e := &fileEntry{mtime: mtime, size: size}
		e.etag = `"` + strconv.FormatInt(e.mtime, 16) + "-" + strconv.FormatInt(e.size, 16) + `"`
		e.lastMod = time.Unix(0, mtime).UTC().Format(http.TimeFormat)
		if got, want := etagListMatches(list, e.etag), refNoneMatch(string(list), e.etag); got != want {
			t.Fatalf("etagListMatches(%q, %s): got %v, reference %v", list, e.etag, got, want)
		}
		if ifRangeHolds(list, e) {
			if v := strings.Trim(string(list), " \t"); v != e.etag && v != e.lastMod {
				t.Fatalf("ifRangeHolds(%q) for %s / %s: a range allowed by another validator", list, e.etag, e.lastMod)
			}
		}
	})
}

// refCodings reads Accept-Encoding (RFC 9110 §12.5.3): a list of codings,
// each with an optional weight ";" OWS "q=" qvalue ("q" in any case, as ABNF
// strings are). It reports which of br and gzip the client accepts (an
// explicit entry with a weight above 0, or "*" with one when the coding is
// not listed) and refuses (an explicit weight of 0, or "*;q=0" when it is
// not listed), and whether the whole value was well formed.
var refQ = regexp.MustCompile(`^(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)$`)

func refCodings(ae string) (accept, refuse map[string]bool, wellFormed bool) {
	accept, refuse = map[string]bool{}, map[string]bool{}
	explicit := map[string]bool{}
	garbled := map[string]bool{} // codings named with a malformed weight ("br;", "br;q=x")
	star := ""
	wellFormed = true
	type entry struct {
		name string
		zero bool
	}
	var entries []entry
	for _, part := range strings.Split(ae, ",") {
		part = strings.Trim(part, " \t")
		if part == "" {
			continue
		}
		name, params, hasParams := strings.Cut(part, ";")
		name = strings.ToLower(strings.Trim(name, " \t"))
		if name == "" || strings.IndexFunc(name, func(r rune) bool { return r > 0x7f || !tokenChar(byte(r)) }) >= 0 {
			wellFormed = false
			continue
		}
		zero := false
		if hasParams {
			p := strings.Trim(params, " \t")
			if len(p) < 2 || p[0]|0x20 != 'q' || p[1] != '=' || !refQ.MatchString(p[2:]) {
				wellFormed = false
				garbled[name] = true
				continue
			}
			zero = strings.Trim(p[2:], "0.") == ""
		}
		entries = append(entries, entry{name, zero})
	}
	for _, e := range entries {
		if e.name == "*" {
			if e.zero {
				star = "refuse"
			} else if star == "" {
				star = "accept"
			}
			continue
		}
		explicit[e.name] = true
		if e.zero {
			refuse[e.name] = true
		} else {
			accept[e.name] = true
		}
	}
	for _, c := range []string{"br", "gzip"} {
		if refuse[c] && accept[c] {
			// Listed twice, with and without a weight of 0: either reading
			// may be taken.
			wellFormed, refuse[c] = false, false
		}
		if !explicit[c] {
			accept[c], refuse[c] = star == "accept", star == "refuse"
		}
		if garbled[c] {
			refuse[c] = false // "br;, br;q=0": the client's word on br is unclear
		}
	}
	return accept, refuse, wellFormed
}

// FuzzAcceptEncoding checks acceptedEncoding against refCodings: it never
// sends a precompressed sibling the client refused, and from a well-formed
// value it picks br when accepted, else gzip when accepted.
func FuzzAcceptEncoding(f *testing.F) {
	for _, s := range []string{"gzip", "br", "gzip, br", "br;q=0", "br;q=0, *", "gzip;q=0, *", "*;q=0", "*", "BR",
		"br;Q=0", "br; q=0.000", "br;q=0.001", "br;q=1.0", "br;q=abc", "br;level=1;q=0", "br;q=0.0001", "identity",
		"gzip;q=0, gzip", ",,gzip,,", "", " ", "br ;q=0", "x-gzip", "gzip;q=-0", "gzip;q=0e1", "br;q=0x0"} {
		f.Add([]byte(s), uint8(encBr|encGzip))
	}
	f.Fuzz(func(t *testing.T, ae []byte, have uint8) {
		for _, c := range ae {
			if !valueOK[c] {
				return // not a field value the parser lets through ("gzip;q=0,\ngzip")
			}
		}
		h := int(have) & (encBr | encGzip)
		got := acceptedEncoding(ae, h)
		accept, refuse, wellFormed := refCodings(string(ae))
		name := map[int]string{0: "", encBr: "br", encGzip: "gzip"}[got]
		if got != 0 && (h&got == 0 || name == "") {
			t.Fatalf("acceptedEncoding(%q, %b) = %d: not a sibling we have", ae, h, got)
		}
		if refuse[name] {
			t.Fatalf("acceptedEncoding(%q, %b) chose %s, which the client refused", ae, h, name)
		}
		if !wellFormed {
			return
		}
		want := 0
		switch {
		case accept["br"] && h&encBr != 0:
			want = encBr
		case accept["gzip"] && h&encGzip != 0:
			want = encGzip
		}
		if got != want {
			t.Fatalf("acceptedEncoding(%q, %b): got %d, reference %d (accept %v)", ae, h, got, want, accept)
		}
	})
}

// asciiFold compares two header names ignoring ASCII case only.
func asciiFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

type kv struct{ k, v string }

// refQuery is the reference reading of a query: pairs split at '&', empty
// ones skipped, key and value split at the first '=', each decoded by
// net/url's QueryUnescape ('+' a space) or kept as sent when it is malformed.
func refQuery(q string) []kv {
	var out []kv
	for _, pair := range strings.Split(q, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if d, err := url.QueryUnescape(k); err == nil {
			k = d
		}
		if d, err := url.QueryUnescape(v); err == nil {
			v = d
		}
		out = append(out, kv{k, v})
	}
	return out
}

// FuzzCtxAccessors parses a request head and checks what a handler reads
// of it against references: RawPath and Path (net/url's PathUnescape),
// Query and VisitQuery (refQuery; a key matched after decoding), Header and
// VisitHeaders (the field lines split by hand, names compared in ASCII case),
// and Host.
func FuzzCtxAccessors(f *testing.F) {
	for _, s := range []struct{ target, name string }{
		{"/a%20b/c?x=1&y=%41&x=2", "x"}, {"/?a+b=c+d&&=e&f", "a b"}, {"/p%zz?q=%", "q"}, {"/%2", "%2"},
		{"http://host:80/p%2Fq?x=y", "x"}, {"http://host?x=1", "x"}, {"https://h", ""}, {"*", ""},
		{"/?%7e=1&~=2", "~"}, {"/?k=%E2%82%AC&k", "k"}, {"/x?" + strings.Repeat("%41", 40) + "=long", strings.Repeat("A", 40)},
		{"/?" + strings.Repeat("a", 70) + "+=1", strings.Repeat("a", 70) + " "}, {"//a//b?", ""}, {"x://", ""},
	} {
		f.Add([]byte("GET "+s.target+" HTTP/1.1\r\nHost: h \r\nX-A:  v1 \t\r\nx-a: v2\r\nCookie: a=b; c=d\r\n\r\n"), s.name)
	}
	f.Fuzz(func(t *testing.T, head []byte, name string) {
		c := &Ctx{}
		if _, err := ParseRequest(head, &c.req); err != nil {
			return
		}
		target := string(c.Target())

		raw := string(c.RawPath())
		wantRaw, _, _ := strings.Cut(target, "?")
		// absolute-form, "scheme://authority/path": the path after the
		// authority, "/" when there is none.
		if _, rest, ok := strings.Cut(target, "://"); ok && target[0] != '/' && target[0] != '*' {
			if i := strings.IndexAny(rest, "/?"); i < 0 || rest[i] == '?' {
				wantRaw = "/"
			} else {
				wantRaw, _, _ = strings.Cut(rest[i:], "?")
			}
		}
		if raw != wantRaw {
			t.Fatalf("RawPath of %q: got %q, want %q", target, raw, wantRaw)
		}
		wantPath := raw
		if d, err := url.PathUnescape(raw); err == nil {
			wantPath = d
		}
		if got := string(c.Path()); got != wantPath {
			t.Fatalf("Path of %q: got %q, want %q", target, got, wantPath)
		}
		if got := string(c.Path()); got != wantPath {
			t.Fatalf("Path of %q, asked again: got %q, want %q", target, got, wantPath)
		}

		_, q, hasQ := strings.Cut(target, "?")
		if got := c.QueryString(); (got != nil) != hasQ || string(got) != q {
			t.Fatalf("QueryString of %q: got %q (nil %v), want %q", target, got, got == nil, q)
		}
		want := refQuery(q)
		var visited []kv
		c.VisitQuery(func(k, v []byte) bool {
			visited = append(visited, kv{string(k), string(v)})
			return true
		})
		if len(visited) != len(want) {
			t.Fatalf("VisitQuery of %q: got %q, want %q", q, visited, want)
		}
		for i := range want {
			if visited[i] != want[i] {
				t.Fatalf("VisitQuery of %q: got %q, want %q", q, visited, want)
			}
		}
		var wantV string
		found := false
		for _, p := range strings.Split(q, "&") {
			k, v, _ := strings.Cut(p, "=")
			if p == "" {
				continue
			}
			if d, err := url.QueryUnescape(k); err == nil && d == name {
				if d, err := url.QueryUnescape(v); err == nil {
					v = d
				}
				wantV, found = v, true
				break
			}
		}
		if got, ok := c.Query(name); ok != found || string(got) != wantV {
			t.Fatalf("Query(%q) of %q: got %q, %v; want %q, %v", name, q, got, ok, wantV, found)
		}

		var fields []kv
		for _, line := range strings.Split(string(c.req.Fields), "\r\n") {
			if n, v, ok := strings.Cut(line, ":"); ok {
				fields = append(fields, kv{n, strings.Trim(v, " \t")})
			}
		}
		var got []kv
		c.VisitHeaders(func(n, v []byte) bool {
			got = append(got, kv{string(n), string(v)})
			return true
		})
		if len(got) != len(fields) {
			t.Fatalf("VisitHeaders of %q: got %q, want %q", c.req.Fields, got, fields)
		}
		for i := range fields {
			if got[i] != fields[i] {
				t.Fatalf("VisitHeaders of %q: got %q, want %q", c.req.Fields, got, fields)
			}
		}
		for _, n := range []string{name, "Host", "x-a", "COOKIE"} {
			var want []byte
			for _, fl := range fields {
				if asciiFold(fl.k, n) {
					want = []byte(fl.v)
					break
				}
			}
			if h := c.Header(n); (h == nil) != (want == nil) || string(h) != string(want) {
				t.Fatalf("Header(%q) of %q: got %q, want %q", n, c.req.Fields, h, want)
			}
		}
		// RFC 9112 §3.2.2: an absolute-form target's authority is the Host.
		wantHost := string(c.Header("Host"))
		if _, rest, ok := strings.Cut(target, "://"); ok && target[0] != '/' {
			wantHost, _, _ = strings.Cut(rest, "/")
			wantHost, _, _ = strings.Cut(wantHost, "?")
		}
		if string(c.Host()) != wantHost {
			t.Fatalf("Host of %q: got %q, want %q", c.req.Fields, c.Host(), wantHost)
		}
	})
}

// FuzzHeaderField checks the header setters a handler calls: a field is
// refused unless its name is a token and its value holds no control byte but
// HTAB, and the server's own fields are refused; one accepted is written as
// "Name: value" CRLF and reads back, and DelHeader removes it.
func FuzzHeaderField(f *testing.F) {
	for _, s := range [][2]string{{"X-A", "v"}, {"X-A", "a\r\nInjected: 1"}, {"X-A", "a\nb"}, {"X-A", "a\x00"},
		{"X-A", "tab\there"}, {"X-A", "\x7f"}, {"X-A", "caf\xc3\xa9 \xff"}, {"", "v"}, {"X A", "v"}, {"X:A", "v"},
		{"content-LENGTH", "5"}, {"Transfer-Encoding", "chunked"}, {"date", "x"}, {"Server", "x"}, {"connection", "close"},
		{"Contentlength", "1"}, {"X-\xc3\xa9", "v"}, {"Set-Cookie", "a=1; Path=/"}, {"K", ""}} {
		f.Add(s[0], s[1])
	}
	reserved := []string{"content-length", "transfer-encoding", "connection", "date", "server"}
	f.Fuzz(func(t *testing.T, name, value string) {
		wantErr := error(nil)
		if name == "" || strings.IndexFunc(name, func(r rune) bool { return r > 0x7f || !tokenChar(byte(r)) }) >= 0 ||
			!utf8.ValidString(name) {
			wantErr = ErrInvalidHeader
		}
		for i := 0; i < len(value) && wantErr == nil; i++ {
			if c := value[i]; c < 0x20 && c != '\t' || c == 0x7f {
				wantErr = ErrInvalidHeader
			}
		}
		for _, r := range reserved {
			if wantErr == nil && asciiFold(name, r) {
				wantErr = ErrReservedHeader
			}
		}
		fl, err := NewField(name, value)
		if err != wantErr {
			t.Fatalf("NewField(%q, %q): got %v, want %v", name, value, err, wantErr)
		}
		var r Response
		r.reset()
		if err := r.SetHeader("X-Before", "1"); err != nil {
			t.Fatal(err)
		}
		if err := r.AddHeader(name, value); err != wantErr {
			t.Fatalf("AddHeader(%q, %q): got %v, want %v", name, value, err, wantErr)
		}
		if err := r.SetHeader(name, value); err != wantErr {
			t.Fatalf("SetHeader(%q, %q): got %v, want %v", name, value, err, wantErr)
		}
		if wantErr != nil {
			if string(r.hdr) != "X-Before: 1\r\n" {
				t.Fatalf("a refused field changed the header: %q", r.hdr)
			}
			return
		}
		if fl.line != name+": "+value+"\r\n" {
			t.Fatalf("NewField(%q, %q): line %q", name, value, fl.line)
		}
		// SetHeader replaced what AddHeader added (unless the name is X-Before's).
		if n := strings.Count(string(r.hdr), "\r\n"); n != 2 && !asciiFold(name, "X-Before") || n != 1 && asciiFold(name, "X-Before") {
			t.Fatalf("after AddHeader and SetHeader of %q: header %q", name, r.hdr)
		}
		if got := r.ResponseHeader(name); string(got) != strings.Trim(value, " \t") {
			t.Fatalf("ResponseHeader(%q): got %q, want %q", name, got, strings.Trim(value, " \t"))
		}
		r.DelHeader(name)
		if r.ResponseHeader(name) != nil || !asciiFold(name, "X-Before") && string(r.hdr) != "X-Before: 1\r\n" {
			t.Fatalf("DelHeader(%q): header %q", name, r.hdr)
		}
	})
}
