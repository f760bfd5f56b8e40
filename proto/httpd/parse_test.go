package httpd

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"strings"
	"testing"
)

const wrkReq = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"

const browserReq = "GET /index.html?lang=en HTTP/1.1\r\n" +
	"Host: www.example.com:8080\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
	"Accept-Language: en-US,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Referer: https://www.example.com/\r\n" +
	"Connection: keep-alive\r\n" +
	"Cookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\n" +
	"Upgrade-Insecure-Requests: 1\r\n" +
	"Sec-Fetch-Dest: document\r\n" +
	"Sec-Fetch-Mode: navigate\r\n" +
	"\r\n"

// headOfSize returns a valid HTTP/1.1 GET head exactly n bytes long.
func headOfSize(n int) string {
	const pre = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: "
	const post = "\r\n\r\n"
	return pre + strings.Repeat("p", n-len(pre)-len(post)) + post
}

func TestParseRequest(t *testing.T) {
	type want struct {
		method, target, host string
		minor                uint8
		cl                   int64
		flags                Flags
		keepAlive            bool
	}
	tests := []struct {
		name  string
		in    string
		n     int // expected head length; -1 means len(in)
		err   error
		check *want
	}{
		{name: "wrk GET", in: wrkReq, n: -1,
			check: &want{method: "GET", target: "/", host: "127.0.0.1:8080", minor: 1, flags: FlagHost, keepAlive: true}},
		{name: "browser GET", in: browserReq, n: -1,
			check: &want{method: "GET", target: "/index.html?lang=en", host: "www.example.com:8080", minor: 1,
				flags: FlagHost | FlagConnKeepAlive, keepAlive: true}},
		{name: "HEAD", in: "HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n", n: -1,
			check: &want{method: "HEAD", target: "/x", host: "h", minor: 1, flags: FlagHEAD | FlagHost, keepAlive: true}},
		{name: "POST with length", in: "POST /submit HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", n: 53,
			check: &want{method: "POST", target: "/submit", host: "h", minor: 1, cl: 5, flags: FlagHost | FlagContentLength, keepAlive: true}},
		{name: "HTTP/1.0 closes", in: "GET / HTTP/1.0\r\n\r\n", n: -1,
			check: &want{method: "GET", target: "/", minor: 0}},
		{name: "HTTP/1.0 keep-alive", in: "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", n: -1,
			check: &want{method: "GET", target: "/", minor: 0, flags: FlagConnKeepAlive, keepAlive: true}},
		{name: "HTTP/1.1 close", in: "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", n: -1,
			check: &want{method: "GET", target: "/", host: "h", minor: 1, flags: FlagHost | FlagConnClose}},
		{name: "Connection token list", in: "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade ,KEEP-ALIVE,\t cLoSe \r\n\r\n", n: -1,
			check: &want{method: "GET", target: "/", host: "h", minor: 1, flags: FlagHost | FlagConnClose | FlagConnKeepAlive}},
		{name: "Connection tokens that only contain close", in: "GET / HTTP/1.1\r\nHost: h\r\nConnection: closed, xclose, clo se\r\n\r\n", n: -1,
			check: &want{method: "GET", target: "/", host: "h", minor: 1, flags: FlagHost, keepAlive: true}},
		{name: "two Connection fields", in: "GET / HTTP/1.0\r\nConnection: keep-alive\r\nconnection: close\r\n\r\n", n: -1,
			check: &want{method: "GET", target: "/", minor: 0, flags: FlagConnClose | FlagConnKeepAlive}},
		{name: "chunked any case", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ChUnKeD\r\n\r\n", n: -1,
			check: &want{method: "POST", target: "/", host: "h", minor: 1, flags: FlagHost | FlagChunked | flagTE, keepAlive: true}},
		{name: "Expect 100-continue", in: "PUT / HTTP/1.1\r\nHost: h\r\nexpect: 100-Continue\r\nContent-Length: 1\r\n\r\n", n: -1,
			check: &want{method: "PUT", target: "/", host: "h", minor: 1, cl: 1, flags: FlagHost | FlagExpectContinue | FlagContentLength, keepAlive: true}},
		{name: "same Content-Length twice", in: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n", n: -1,
			check: &want{method: "POST", target: "/", host: "h", minor: 1, cl: 7, flags: FlagHost | FlagContentLength, keepAlive: true}},
		{name: "largest Content-Length", in: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775807\r\n\r\n", n: -1,
			check: &want{method: "POST", target: "/", host: "h", minor: 1, cl: 1<<63 - 1, flags: FlagHost | FlagContentLength, keepAlive: true}},
		{name: "OWS trimmed", in: "GET / HTTP/1.1\r\nHost: \t a.b \t\r\n\r\n", n: -1,
			check: &want{method: "GET", target: "/", host: "a.b", minor: 1, flags: FlagHost, keepAlive: true}},
		{name: "obs-text in a value", in: "GET /caf%C3%A9 HTTP/1.1\r\nHost: h\r\nX: \xff\x80\r\n\r\n", n: -1,
			check: &want{method: "GET", target: "/caf%C3%A9", host: "h", minor: 1, flags: FlagHost, keepAlive: true}},
		{name: "every byte a target may hold", in: "GET /az-AZ09._~!$&'()*+,;=:@/%00%fF?/?[]\\^`{|} HTTP/1.1\r\nHost: h\r\n\r\n", n: -1,
			check: &want{method: "GET", target: "/az-AZ09._~!$&'()*+,;=:@/%00%fF?/?[]\\^`{|}", host: "h", minor: 1, flags: FlagHost, keepAlive: true}},
		{name: "Host with port", in: "GET / HTTP/1.1\r\nHost: Example.ORG:8080\r\n\r\n", n: -1,
			check: &want{method: "GET", target: "/", host: "Example.ORG:8080", minor: 1, flags: FlagHost, keepAlive: true}},
		{name: "Host with empty port", in: "GET / HTTP/1.1\r\nHost: h:\r\n\r\n", n: -1,
			check: &want{method: "GET", target: "/", host: "h:", minor: 1, flags: FlagHost, keepAlive: true}},
		{name: "Host IPv6", in: "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", n: -1,
			check: &want{method: "GET", target: "/", host: "[::1]:80", minor: 1, flags: FlagHost, keepAlive: true}},
		{name: "Host IPv6 with IPv4", in: "GET / HTTP/1.1\r\nHost: [64:ff9b::192.0.2.33]\r\n\r\n", n: -1,
			check: &want{method: "GET", target: "/", host: "[64:ff9b::192.0.2.33]", minor: 1, flags: FlagHost, keepAlive: true}},
		{name: "Host IPvFuture", in: "GET / HTTP/1.1\r\nHost: [v1f.a:b]\r\n\r\n", n: -1,
			check: &want{method: "GET", target: "/", host: "[v1f.a:b]", minor: 1, flags: FlagHost, keepAlive: true}},
		{name: "Host pct-encoded and sub-delims", in: "GET / HTTP/1.1\r\nHost: a%2Db!$&'()*+;=_~\r\n\r\n", n: -1,
			check: &want{method: "GET", target: "/", host: "a%2Db!$&'()*+;=_~", minor: 1, flags: FlagHost, keepAlive: true}},
		{name: "absolute-form: its authority is the Host", in: "GET http://Other.example:81/p?q HTTP/1.1\r\nHost: h\r\n\r\n", n: -1,
			check: &want{method: "GET", target: "http://Other.example:81/p?q", host: "Other.example:81", minor: 1, flags: FlagHost | flagAbsolute, keepAlive: true}},
		{name: "absolute-form without path, scheme in capitals", in: "GET HTTP://h2?q HTTP/1.1\r\nHost: h\r\n\r\n", n: -1,
			check: &want{method: "GET", target: "HTTP://h2?q", host: "h2", minor: 1, flags: FlagHost | flagAbsolute, keepAlive: true}},
		{name: "absolute-form in HTTP/1.0 without Host", in: "GET http://h/ HTTP/1.0\r\n\r\n", n: -1,
			check: &want{method: "GET", target: "http://h/", host: "h", minor: 0, flags: flagAbsolute}},
		{name: "OPTIONS asterisk", in: "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", n: -1,
			check: &want{method: "OPTIONS", target: "*", host: "h", minor: 1, flags: FlagHost, keepAlive: true}},
		{name: "registered methods", in: "UPDATEREDIRECTREF / HTTP/1.1\r\nHost: h\r\n\r\n", n: -1,
			check: &want{method: "UPDATEREDIRECTREF", target: "/", host: "h", minor: 1, flags: FlagHost, keepAlive: true}},
		{name: "TRACE is the handler's", in: "TRACE / HTTP/1.1\r\nHost: h\r\n\r\n", n: -1,
			check: &want{method: "TRACE", target: "/", host: "h", minor: 1, flags: FlagHost, keepAlive: true}},
		{name: "Expect list of 100-continue", in: "PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue, ,100-CONTINUE\r\nExpect:\r\n\r\n", n: -1,
			check: &want{method: "PUT", target: "/", host: "h", minor: 1, flags: FlagHost | FlagExpectContinue, keepAlive: true}},
		{name: "TE list with empty elements", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , chunked ,\r\n\r\n", n: -1,
			check: &want{method: "POST", target: "/", host: "h", minor: 1, flags: FlagHost | FlagChunked | flagTE, keepAlive: true}},
		{name: "leading empty lines skipped", in: "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", n: -1,
			check: &want{method: "GET", target: "/", host: "h", minor: 1, flags: FlagHost, keepAlive: true}},
		{name: "HTTP/1.2 is 1.x", in: "GET / HTTP/1.2\r\nHost: h\r\n\r\n", n: -1,
			check: &want{method: "GET", target: "/", host: "h", minor: 2, flags: FlagHost, keepAlive: true}},
		{name: "pipelined rest not consumed", in: wrkReq + "GET / HTTP/1.1\r\n", n: len(wrkReq),
			check: &want{method: "GET", target: "/", host: "127.0.0.1:8080", minor: 1, flags: FlagHost, keepAlive: true}},
		{name: "exactly 8 KiB", in: headOfSize(MaxHeadSize), n: MaxHeadSize,
			check: &want{method: "GET", target: "/", host: "a", minor: 1, flags: FlagHost, keepAlive: true}},

		{name: "empty", in: "", err: ErrIncomplete},
		{name: "partial method", in: "GE", err: ErrIncomplete},
		{name: "partial version", in: "GET / HTTP/1.", err: ErrIncomplete},
		{name: "no empty line", in: "GET / HTTP/1.1\r\nHost: h\r\n", err: ErrIncomplete},
		{name: "CR of empty line", in: "GET / HTTP/1.1\r\nHost: h\r\n\r", err: ErrIncomplete},
		{name: "only empty lines", in: "\r\n\r\n", err: ErrIncomplete},
		{name: "8 KiB minus 1 without end", in: "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", MaxHeadSize-1-19), err: ErrIncomplete},
		{name: "longest method without end", in: "UPDATEREDIRECTREF", err: ErrIncomplete},
		{name: "target 8 KiB minus 1 without end", in: "GET /" + strings.Repeat("a", MaxHeadSize-6), err: ErrIncomplete},
		{name: "partial escape", in: "GET /%a", err: ErrIncomplete},

		{name: "8 KiB plus 1", in: headOfSize(MaxHeadSize + 1), err: ErrHeadTooLarge},
		{name: "8 KiB without end", in: "GET / HTTP/1.1\r\nHost: h\r\nX: " + strings.Repeat("a", MaxHeadSize), err: ErrHeadTooLarge},
		{name: "huge method", in: strings.Repeat("A", MaxHeadSize), err: ErrMethodTooLong},
		{name: "method of 18 bytes", in: "UPDATEREDIRECTREFS", err: ErrMethodTooLong},
		{name: "huge target", in: "GET /" + strings.Repeat("a", MaxHeadSize), err: ErrURITooLong},
		{name: "target ends at the limit", in: "GET /" + strings.Repeat("a", MaxHeadSize-5) + " HTTP/1.1\r\n", err: ErrURITooLong},
		{name: "lower-case method", in: "head / HTTP/1.1\r\nHost: h\r\n\r\n", err: ErrUnknownMethod},
		{name: "unregistered method", in: "M-SEARCH * HTTP/1.1\r\nHost: h\r\n\r\n", err: ErrUnknownMethod},
		{name: "CONNECT", in: "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", err: ErrConnect},
		{name: "asterisk with GET", in: "GET * HTTP/1.1\r\nHost: h\r\n\r\n", err: ErrAsteriskForm},
		{name: "asterisk and more", in: "OPTIONS *x HTTP/1.1\r\nHost: h\r\n\r\n", err: ErrTargetForm},
		{name: "authority-form", in: "GET h:80 HTTP/1.1\r\nHost: h\r\n\r\n", err: ErrTargetForm},
		{name: "https absolute-form", in: "GET https://h/ HTTP/1.1\r\nHost: h\r\n\r\n", err: ErrTargetForm},
		{name: "other scheme", in: "GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", err: ErrTargetForm},
		{name: "absolute-form with userinfo", in: "GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n", err: ErrBadTarget},
		{name: "absolute-form with empty host", in: "GET http:///p HTTP/1.1\r\nHost: h\r\n\r\n", err: ErrBadTarget},
		{name: "absolute-form without Host in 1.1", in: "GET http://h/ HTTP/1.1\r\n\r\n", err: ErrMissingHost},
		{name: "absolute-form with a bad Host", in: "GET http://h/ HTTP/1.1\r\nHost: a@b\r\n\r\n", err: ErrBadHost},
		{name: "raw UTF-8 in target", in: "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", err: ErrBadTarget},
		{name: "overlong UTF-8 in target", in: "GET /\xc0\xaf HTTP/1.1\r\nHost: h\r\n\r\n", err: ErrBadTarget},
		{name: "high byte in a long target", in: "GET /0123456789abcdef\x80 HTTP/1.1\r\nHost: h\r\n\r\n", err: ErrBadTarget},
		{name: "fragment", in: "GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n", err: ErrBadTarget},
		{name: "quote in target", in: "GET /a\"b HTTP/1.1\r\nHost: h\r\n\r\n", err: ErrBadTarget},
		{name: "angle brackets in target", in: "GET /<script> HTTP/1.1\r\nHost: h\r\n\r\n", err: ErrBadTarget},
		{name: "malformed escape", in: "GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n", err: ErrBadTarget},
		{name: "escape cut by SP", in: "GET /a%4 HTTP/1.1\r\nHost: h\r\n\r\n", err: ErrBadTarget},
		{name: "escape at the end", in: "GET /a% HTTP/1.1\r\nHost: h\r\n\r\n", err: ErrBadTarget},

		{name: "missing spaces", in: "GET /HTTP/1.1\r\nHost: h\r\n\r\n", err: ErrBadRequestLine},
		{name: "no target", in: "GET HTTP/1.1\r\nHost: h\r\n\r\n", err: ErrBadRequestLine},
		{name: "two spaces", in: "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", err: ErrBadRequestLine},
		{name: "leading space", in: " GET / HTTP/1.1\r\nHost: h\r\n\r\n", err: ErrBadRequestLine},
		{name: "method only", in: "GET\r\n\r\n", err: ErrBadRequestLine},
		{name: "HTTP/0.9 request line", in: "GET /\r\n\r\n", err: ErrBadRequestLine},
		{name: "garbage line", in: "GARBAGE\r\n", err: ErrBadRequestLine},
		{name: "bad method char", in: "G@T / HTTP/1.1\r\nHost: h\r\n\r\n", err: ErrBadMethod},
		{name: "method with NUL", in: "GE\x00T / HTTP/1.1\r\nHost: h\r\n\r\n", err: ErrBadMethod},
		{name: "method starts with control", in: "\x16\x03\x01\x02\x00\x01", err: ErrBadMethod},
		{name: "control in target", in: "GET /a\x01b HTTP/1.1\r\nHost: h\r\n\r\n", err: ErrBadTarget},
		{name: "DEL in target", in: "GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", err: ErrBadTarget},
		{name: "tab after target", in: "GET /\tHTTP/1.1\r\nHost: h\r\n\r\n", err: ErrBadTarget},
		{name: "HTTP/2.0", in: "GET / HTTP/2.0\r\nHost: h\r\n\r\n", err: ErrVersionNotSupported},
		{name: "HTTP/3.1", in: "GET / HTTP/3.1\r\n", err: ErrVersionNotSupported},
		{name: "HTTP/0.9", in: "GET / HTTP/0.9\r\n", err: ErrVersionNotSupported},
		{name: "lower-case version", in: "GET / http/1.1\r\nHost: h\r\n\r\n", err: ErrBadVersion},
		{name: "garbage version", in: "GET / FOO\r\nHost: h\r\n\r\n", err: ErrBadVersion},
		{name: "version 1.10", in: "GET / HTTP/1.10\r\nHost: h\r\n\r\n", err: ErrBadVersion},
		{name: "version 11.1", in: "GET / HTTP/11.1\r\n", err: ErrBadVersion},
		{name: "version letter", in: "GET / HTTP/1.x\r\n", err: ErrBadVersion},
		{name: "space after version", in: "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", err: ErrBadVersion},
		{name: "extra request-line field", in: "GET / HTTP/1.1 x\r\n", err: ErrBadVersion},
		{name: "bare CR after version", in: "GET / HTTP/1.1\rHost: h\r\n\r\n", err: ErrBareCR},
		{name: "header without colon", in: "GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", err: ErrMissingColon},
		{name: "space before colon", in: "GET / HTTP/1.1\r\nHost : h\r\n\r\n", err: ErrSpaceBeforeColon},
		{name: "tab before colon", in: "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", err: ErrSpaceBeforeColon},
		{name: "space inside name", in: "GET / HTTP/1.1\r\nHost: h\r\nX Y: z\r\n\r\n", err: ErrSpaceBeforeColon},
		{name: "obs-fold space", in: "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", err: ErrObsFold},
		{name: "obs-fold tab", in: "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n", err: ErrObsFold},
		{name: "non-token name", in: "GET / HTTP/1.1\r\nHost: h\r\nX(Y): z\r\n\r\n", err: ErrBadHeaderName},
		{name: "empty name", in: "GET / HTTP/1.1\r\nHost: h\r\n: z\r\n\r\n", err: ErrBadHeaderName},
		{name: "UTF-8 name", in: "GET / HTTP/1.1\r\nHost: h\r\nK\xc3\xa9y: z\r\n\r\n", err: ErrBadHeaderName},
		{name: "NUL in value", in: "GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n", err: ErrBadHeaderValue},
		{name: "control in value", in: "GET / HTTP/1.1\r\nHost: h\x01\r\n\r\n", err: ErrBadHeaderValue},
		{name: "DEL in value", in: "GET / HTTP/1.1\r\nHost: h\r\nX: 0123456789\x7f\r\n\r\n", err: ErrBadHeaderValue},
		{name: "bare CR in value", in: "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", err: ErrBareCR},
		{name: "bare CR in empty line", in: "GET / HTTP/1.1\r\nHost: h\r\n\rX", err: ErrBareCR},
		{name: "bare LF request line", in: "GET / HTTP/1.1\nHost: h\n\n", err: ErrBareLF},
		{name: "bare LF header", in: "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", err: ErrBareLF},
		{name: "bare LF empty line", in: "GET / HTTP/1.1\r\nHost: h\r\n\n", err: ErrBareLF},
		{name: "1.1 without Host", in: "GET / HTTP/1.1\r\n\r\n", err: ErrMissingHost},
		{name: "two Hosts", in: "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", err: ErrDuplicateHost},
		{name: "two Hosts in 1.0", in: "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", err: ErrDuplicateHost},
		{name: "empty Host", in: "GET / HTTP/1.1\r\nHost:\r\n\r\n", err: ErrBadHost},
		{name: "empty Host in 1.0", in: "GET / HTTP/1.0\r\nHost: \r\n\r\n", err: ErrBadHost},
		{name: "Host with userinfo", in: "GET / HTTP/1.1\r\nHost: user@h\r\n\r\n", err: ErrBadHost},
		{name: "Host with path", in: "GET / HTTP/1.1\r\nHost: h/p\r\n\r\n", err: ErrBadHost},
		{name: "Host list", in: "GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", err: ErrBadHost},
		{name: "Host with a space", in: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", err: ErrBadHost},
		{name: "Host with UTF-8", in: "GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n", err: ErrBadHost},
		{name: "Host with only a port", in: "GET / HTTP/1.1\r\nHost: :80\r\n\r\n", err: ErrBadHost},
		{name: "Host port not digits", in: "GET / HTTP/1.1\r\nHost: h:8o\r\n\r\n", err: ErrBadHost},
		{name: "Host two ports", in: "GET / HTTP/1.1\r\nHost: h:1:2\r\n\r\n", err: ErrBadHost},
		{name: "Host bad escape", in: "GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", err: ErrBadHost},
		{name: "Host IPv6 unclosed", in: "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", err: ErrBadHost},
		{name: "Host IPv6 bad", in: "GET / HTTP/1.1\r\nHost: [1::2::3]\r\n\r\n", err: ErrBadHost},
		{name: "Host IPv6 junk after", in: "GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", err: ErrBadHost},
		{name: "Host bracket inside", in: "GET / HTTP/1.1\r\nHost: a[::1]\r\n\r\n", err: ErrBadHost},
		{name: "space before the first field", in: "GET / HTTP/1.1\r\n Host: h\r\n\r\n", err: ErrSpaceBeforeField},
		{name: "whitespace line before the first field", in: "GET / HTTP/1.1\r\n\t\r\nHost: h\r\n\r\n", err: ErrSpaceBeforeField},
		{name: "Expect other", in: "PUT / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", n: -1,
			check: &want{method: "PUT", target: "/", host: "h", minor: 1, flags: FlagHost | flagBadExpect, keepAlive: true}},
		{name: "Expect with parameters", in: "PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue;a=b\r\n\r\n", n: -1,
			check: &want{method: "PUT", target: "/", host: "h", minor: 1, flags: FlagHost | flagBadExpect, keepAlive: true}},
		{name: "Expect other in a list", in: "PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue, x\r\n\r\n", n: -1,
			check: &want{method: "PUT", target: "/", host: "h", minor: 1, flags: FlagHost | FlagExpectContinue | flagBadExpect, keepAlive: true}},
		{name: "Expect other in 1.0", in: "PUT / HTTP/1.0\r\nExpect: x\r\n\r\n", n: -1,
			check: &want{method: "PUT", target: "/", host: "", minor: 0, flags: flagBadExpect}},
		{name: "CL and TE", in: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", err: ErrLengthAndChunked},
		{name: "TE and CL", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", err: ErrLengthAndChunked},
		{name: "CL letters", in: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n", err: ErrBadContentLength},
		{name: "CL empty", in: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", err: ErrBadContentLength},
		{name: "CL negative", in: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", err: ErrBadContentLength},
		{name: "CL plus sign", in: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\n", err: ErrBadContentLength},
		{name: "CL list", in: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n", err: ErrBadContentLength},
		{name: "CL hex", in: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", err: ErrBadContentLength},
		{name: "CL overflow", in: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775808\r\n\r\n", err: ErrBadContentLength},
		{name: "CL huge overflow", in: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", err: ErrBadContentLength},
		{name: "CL values differ", in: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", err: ErrConflictingLength},
		{name: "TE gzip", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", err: ErrChunkedNotFinal},
		{name: "TE chunked, gzip", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", err: ErrChunkedNotFinal},
		{name: "TE empty", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n", err: ErrChunkedNotFinal},
		{name: "TE only commas", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,,\r\n\r\n", err: ErrChunkedNotFinal},
		{name: "TE xchunked", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n", err: ErrChunkedNotFinal},
		{name: "TE identity", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", err: ErrChunkedNotFinal},
		{name: "TE gzip, chunked", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", err: ErrUnsupportedTE},
		{name: "TE gzip then chunked fields", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", err: ErrUnsupportedTE},
		{name: "TE coding with parameters", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: x;a=b ; c = \"d,\\\"e\" , chunked\r\n\r\n", err: ErrUnsupportedTE},
		{name: "TE chunked twice", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", err: ErrChunkedNotFinal},
		{name: "TE chunked, chunked", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", err: ErrChunkedNotFinal},
		{name: "TE chunked with junk", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;x\r\n\r\n", err: ErrChunkedNotFinal},
		{name: "TE chunked with a parameter", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;a=b\r\n\r\n", err: ErrChunkedNotFinal},
		{name: "TE not a token", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", err: ErrChunkedNotFinal},
		{name: "TE unterminated quote", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: x;a=\"b, chunked\r\n\r\n", err: ErrChunkedNotFinal},
		{name: "TE space inside", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chun ked\r\n\r\n", err: ErrChunkedNotFinal},
		{name: "TE in HTTP/1.0", in: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", err: ErrTEInHTTP10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Request
			n, err := ParseRequest([]byte(tt.in), &r)
			if err != tt.err {
				t.Fatalf("ParseRequest(%q): got error %v, want %v", tt.in, err, tt.err)
			}
			if err != nil {
				if n != 0 {
					t.Errorf("got n %d with an error, want 0", n)
				}
				return
			}
			wantN := tt.n
			if wantN < 0 {
				wantN = len(tt.in)
			}
			if n != wantN {
				t.Errorf("got n %d, want %d", n, wantN)
			}
			w := tt.check
			if string(r.Method) != w.method || string(r.Target) != w.target || string(r.Host) != w.host {
				t.Errorf("got method %q target %q host %q, want %q %q %q", r.Method, r.Target, r.Host, w.method, w.target, w.host)
			}
			if r.Minor != w.minor || r.ContentLength != w.cl || r.Flags != w.flags {
				t.Errorf("got minor %d length %d flags %#x, want %d %d %#x", r.Minor, r.ContentLength, r.Flags, w.minor, w.cl, w.flags)
			}
			if got := r.KeepAlive(); got != w.keepAlive {
				t.Errorf("got KeepAlive %v, want %v", got, w.keepAlive)
			}
			// Every proper prefix of a complete head is incomplete.
			for k := 0; k < n; k++ {
				if _, err := ParseRequest([]byte(tt.in[:k]), &r); err != ErrIncomplete {
					t.Fatalf("prefix of %d bytes: got %v, want ErrIncomplete", k, err)
				}
			}
		})
	}
}

func TestErrorStatus(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
	}{
		{"400", ErrBadRequestLine, 400},
		{"431", ErrHeadTooLarge, 431},
		{"501", ErrUnsupportedTE, 501},
		{"505", ErrVersionNotSupported, 505},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e *Error
			if !errors.As(tt.err, &e) {
				t.Fatalf("errors.As(%v): got false, want true", tt.err)
			}
			if e.Status != tt.status {
				t.Errorf("got status %d, want %d", e.Status, tt.status)
			}
		})
	}
}

func TestValueScanners(t *testing.T) {
	// The 8-byte fast paths must agree with the byte tables at every
	// alignment.
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 17; pos++ {
			b := []byte(strings.Repeat("a", 17))
			b[pos] = byte(c)
			wantV := len(b)
			if !valueOK[c] {
				wantV = pos
			}
			if got := valueEnd(b, 0); got != wantV {
				t.Fatalf("valueEnd with %#x at %d: got %d, want %d", c, pos, got, wantV)
			}
			// target8, spelled out: what RFC 3986 allows and browsers send.
			okT := c > 0x20 && c < 0x7f && strings.IndexByte("\"#%<>", byte(c)) < 0
			if got := target8[c] != 0; got != okT {
				t.Fatalf("target8[%#x]: got %v, want %v", c, got, okT)
			}
			if pos < 8 {
				m := targetMask(binary.LittleEndian.Uint64(b))
				flagged := !okT || c == '!' || c == '$'
				if got := m != 0; got != flagged || (flagged && bits.TrailingZeros64(m)>>3 != pos) {
					t.Fatalf("targetMask with %#x at %d: got %#x, want the flag at %d: %v", c, pos, m, pos, flagged)
				}
			}
			// The target scan as ParseRequest runs it, at every alignment.
			req := "GET /" + strings.Repeat("a", pos) + string([]byte{byte(c)}) + " HTTP/1.1\r\nHost: h\r\n\r\n"
			var r Request
			_, err := ParseRequest([]byte(req), &r)
			switch {
			case c == ' ':
				if err != ErrBadVersion {
					t.Fatalf("%q: got %v, want %v", req, err, ErrBadVersion)
				}
			case c == '%':
				if err != ErrBadTarget { // "%a" is not an escape
					t.Fatalf("%q: got %v, want %v", req, err, ErrBadTarget)
				}
			case okT != (err == nil):
				t.Fatalf("%q: got %v, want accepted %v", req, err, okT)
			}
		}
	}
}

// TestHostScan: hostField's fast path never accepts what validHost refuses,
// and takes the common forms, at every length around the 8-byte steps.
func TestHostScan(t *testing.T) {
	hosts := []string{"h", "localhost", "127.0.0.1:8080", "www.example.com:8080", "A-b.C9", "h:", "h:0123456789"}
	for _, h := range hosts {
		for pad := 0; pad < 9; pad++ {
			w := []byte(strings.Repeat("x", pad) + h + "\r\nX: 0123456789\r\n")
			j, ok := hostScan(w, pad)
			if !ok || j != pad+len(h) {
				t.Errorf("hostScan(%q) at %d: got %d %v, want %d true", h, pad, j, ok, pad+len(h))
			}
		}
	}
	// One byte changed anywhere: the fast path takes it only if validHost does.
	base := "ab.cd-ef.gh:1234"
	for pos := 0; pos < len(base); pos++ {
		for c := 0; c < 256; c++ {
			v := []byte(base)
			v[pos] = byte(c)
			w := append(append([]byte(nil), v...), "\r\nX: 0123456789\r\n"...)
			j, ok := hostScan(w, 0)
			if ok && (!validHost(w[:j]) || j != len(v) && !(c == '\r' && j == pos)) {
				t.Fatalf("hostScan(%q): got %d true, validHost %v", v, j, validHost(w[:j]))
			}
		}
	}
}
