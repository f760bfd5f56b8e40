package httpd

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prefork/prefork/internal/testkit"
)

// conformanceHandler answers "host=" and the request's Host (Ctx.Host), so
// a row can see which authority the server took; /204 and /304 answer
// those statuses without a body.
func conformanceHandler() Handler {
	return HandlerFunc(func(c *Ctx) {
		switch string(c.Path()) {
		case "/204":
			c.SetStatus(204)
		case "/304":
			c.SetStatus(304)
		default:
			_, _ = c.WriteString("host=" + string(c.Host()))
		}
	})
}

const (
	cPost    = "POST / HTTP/1.1\r\nHost: h\r\n"
	cChunked = cPost + "Transfer-Encoding: chunked\r\n\r\n"
	cGet     = "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
)

// conformanceTests has one row per requirement RFC 9112 and RFC 9110 (and
// the RFCs they lean on: 3986 for URIs, 3629 for UTF-8) put on a server
// receiving a request, the section in the row's name. Where the RFC lets
// the server choose, the row pins the strict choice the package
// documentation (Limits and errors) explains. status lists the final
// responses in order; close says whether the connection must close after
// them; check, when set, looks at the last response further.
var conformanceTests = []struct {
	name   string
	req    string
	status []int
	close  bool
	cont   bool // a "100 Continue" comes before the final response
	check  func(t *testing.T, resp *http.Response, body string)
}{
	// Message format and line endings (RFC 9112 §2).
	{name: "RFC9112-2.2/leading-empty-lines-ignored", req: "\r\n\r\n" + cGet, status: []int{200}},
	{name: "RFC9112-2.2/bare-LF-request-line", req: "GET / HTTP/1.1\nHost: h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-2.2/bare-LF-header", req: "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-2.2/bare-CR-request-line", req: "GET / HTTP/1.1\rHost: h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-2.2/bare-CR-in-value", req: "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-2.2/whitespace-before-first-field", req: "GET / HTTP/1.1\r\n Host: h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-2.2/whitespace-line-before-first-field", req: "GET / HTTP/1.1\r\n \r\nHost: h\r\n\r\n", status: []int{400}, close: true},

	// HTTP version (RFC 9112 §2.3, RFC 9110 §2.5, §6.2).
	{name: "RFC9112-2.3/version-lower-case", req: "GET / http/1.1\r\nHost: h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-2.3/version-without-minor", req: "GET / HTTP/1\r\nHost: h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-2.3/version-leading-zeros", req: "GET / HTTP/01.01\r\nHost: h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-2.3/version-with-space", req: "GET / HTTP/ 1.1\r\nHost: h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-2.3/HTTP-0.9-request-line", req: "GET /\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9110-15.6.6/HTTP-2.0-is-505", req: "GET / HTTP/2.0\r\nHost: h\r\n\r\n", status: []int{505}, close: true},
	{name: "RFC9110-15.6.6/HTTP-9.9-is-505", req: "GET / HTTP/9.9\r\nHost: h\r\n\r\n", status: []int{505}, close: true},
	{name: "RFC9110-15.6.6/HTTP-0.9-version-is-505", req: "GET / HTTP/0.9\r\n\r\n", status: []int{505}, close: true},
	{name: "RFC9113-3.4/HTTP-2-preface-is-505", req: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", status: []int{505}, close: true},
	{name: "RFC9110-2.5/HTTP-1.2-served-as-1.x", req: "GET / HTTP/1.2\r\nHost: h\r\n\r\n", status: []int{200}},

	// Request line and method (RFC 9112 §3, RFC 9110 §9).
	{name: "RFC9112-3/two-spaces", req: "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-3/tab-between-method-and-target", req: "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-3/no-target", req: "GET HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-3/space-after-version", req: "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-3/space-in-target", req: "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-3/method-longer-than-any-is-501", req: strings.Repeat("A", 10<<10) + " / HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{501}, close: true},
	{name: "RFC9112-3/target-longer-than-the-head-is-414", req: "GET /" + strings.Repeat("a", 9<<10) + " HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{414}, close: true},
	{name: "RFC9110-5.6.2/method-not-a-token", req: "G@T / HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9110-9.1/unknown-method-is-501", req: "FOOBAR / HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{501}, close: true},
	{name: "RFC9110-9.1/methods-are-case-sensitive", req: "get / HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{501}, close: true},
	{name: "RFC9110-9.1/registered-method-reaches-the-handler", req: "PROPFIND / HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{200}},
	{name: "RFC9110-9.3.6/CONNECT-not-a-proxy-is-501", req: "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", status: []int{501}, close: true},
	{name: "RFC9110-9.3.8/TRACE-is-the-handlers", req: "TRACE / HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{200}},

	// Request target (RFC 9112 §3.2, RFC 3986, RFC 3629).
	{name: "RFC9112-3.2.1/origin-form", req: "GET /a/b;c=d?e=f&g=%20 HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{200}},
	{name: "RFC9112-3.2.1/brackets-in-query-as-browsers-send", req: "GET /?a[]=1&b={x}|y HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{200}},
	{name: "RFC9112-3.2.1/raw-UTF-8", req: "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC3629-3/overlong-UTF-8", req: "GET /\xc0\xaf HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-3.2.1/NUL", req: "GET /\x00 HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-3.2.1/DEL", req: "GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-3.2.1/fragment", req: "GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC3986-2/quote-and-angle-brackets", req: "GET /<\"> HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC3986-2.1/malformed-escape", req: "GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC3986-2.1/cut-escape", req: "GET /%4 HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-3.2.2/absolute-form-accepted", req: "GET http://h/a?b HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{200}, check: bodyIs("host=h")},
	{name: "RFC9112-3.2.2/absolute-form-authority-is-the-host", req: "GET http://other.example:81/ HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{200}, check: bodyIs("host=other.example:81")},
	{name: "RFC9112-3.2.2/absolute-form-still-needs-host", req: "GET http://h/ HTTP/1.1\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9110-4.2.4/absolute-form-with-userinfo", req: "GET http://user@h/ HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9110-4.2.1/absolute-form-empty-host", req: "GET http:///a HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9110-4.2.2/https-absolute-form-over-cleartext", req: "GET https://h/ HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-3.2.3/authority-form-without-CONNECT", req: "GET h:80 HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-3.2.4/asterisk-form-with-GET", req: "GET * HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-3.2.4/asterisk-form-with-OPTIONS", req: "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{200}},

	// Host (RFC 9112 §3.2, RFC 9110 §7.2, RFC 3986 §3.2.2).
	{name: "RFC9112-3.2/missing-host", req: "GET / HTTP/1.1\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-3.2/two-hosts", req: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-3.2/two-hosts-same-value", req: "GET / HTTP/1.1\r\nHost: h\r\nhost: h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-3.2/host-list", req: "GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-3.2/host-with-userinfo", req: "GET / HTTP/1.1\r\nHost: user@h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-3.2/host-with-path", req: "GET / HTTP/1.1\r\nHost: h/path\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-3.2/host-with-space", req: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-3.2/host-port-not-digits", req: "GET / HTTP/1.1\r\nHost: h:http\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-3.2/host-non-ASCII", req: "GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9110-4.2.1/host-empty", req: "GET / HTTP/1.1\r\nHost:\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9110-4.2.1/host-only-a-port", req: "GET / HTTP/1.1\r\nHost: :80\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-3.2/host-name-and-port", req: "GET / HTTP/1.1\r\nHost: Example.COM:8080\r\n\r\n", status: []int{200}, check: bodyIs("host=Example.COM:8080")},
	{name: "RFC9112-3.2/host-IPv6", req: "GET / HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\n\r\n", status: []int{200}, check: bodyIs("host=[2001:db8::1]:8080")},
	{name: "RFC9112-3.2/host-IPv6-malformed", req: "GET / HTTP/1.1\r\nHost: [2001:db8:::1]\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-3.2/HTTP-1.0-without-host", req: "GET / HTTP/1.0\r\n\r\n", status: []int{200}, close: true},
	{name: "RFC9112-3.2/HTTP-1.0-two-hosts", req: "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", status: []int{400}, close: true},

	// Field syntax (RFC 9112 §5, RFC 9110 §5).
	{name: "RFC9112-5.1/space-before-colon", req: "GET / HTTP/1.1\r\nHost: h\r\nX-A : b\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-5.1/tab-before-colon", req: "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-5.2/obs-fold", req: "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-5/empty-field-name", req: "GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-5/field-without-colon", req: "GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9110-5.1/field-name-not-a-token", req: "GET / HTTP/1.1\r\nHost: h\r\nBad[Name: v\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9110-5.1/field-name-non-ASCII", req: "GET / HTTP/1.1\r\nHost: h\r\nX-T\xc3\xabst: v\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9110-5.5/NUL-in-value", req: "GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9110-5.5/controls-in-value", req: "GET / HTTP/1.1\r\nHost: h\r\nX: abc\x07\x08\x0bdef\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9110-5.5/obs-text-in-value", req: "GET / HTTP/1.1\r\nHost: h\r\nX: caf\xc3\xa9\r\n\r\n", status: []int{200}},
	{name: "RFC6585-5/head-over-8KiB-is-431", req: "GET / HTTP/1.1\r\nHost: h\r\nX: " + strings.Repeat("v", 9<<10) + "\r\n\r\n", status: []int{431}, close: true},

	// Message body length (RFC 9112 §6, RFC 9110 §8.6).
	{name: "RFC9112-6.1/TE-and-CL", req: cPost + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-6.1/TE-in-HTTP-1.0", req: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-6.1/TE-unknown-coding-before-chunked-is-501", req: cPost + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", status: []int{501}, close: true},
	{name: "RFC9112-6.1/TE-chunked-twice", req: cPost + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-6.3/TE-final-coding-not-chunked", req: cPost + "Transfer-Encoding: chunked, gzip\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-6.3/TE-gzip", req: cPost + "Transfer-Encoding: gzip\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-6.3/TE-identity", req: cPost + "Transfer-Encoding: identity\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-6.3/TE-xchunked", req: cPost + "Transfer-Encoding: xchunked\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-6.3/TE-empty", req: cPost + "Transfer-Encoding:\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-6.3/TE-chunked-with-parameter", req: cPost + "Transfer-Encoding: chunked;a=b\r\n\r\n0\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9110-5.6.1/TE-empty-list-elements-ignored", req: cPost + "Transfer-Encoding: , chunked,\r\n\r\n1\r\na\r\n0\r\n\r\n", status: []int{200}},
	{name: "RFC9110-5.6.1/TE-case-insensitive", req: cPost + "Transfer-Encoding: ChUnKeD\r\n\r\n0\r\n\r\n", status: []int{200}},
	{name: "RFC9112-6.3/CL-not-digits", req: cPost + "Content-Length: abc\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-6.3/CL-plus-sign", req: cPost + "Content-Length: +5\r\n\r\nhello", status: []int{400}, close: true},
	{name: "RFC9112-6.3/CL-negative", req: cPost + "Content-Length: -1\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-6.3/CL-empty", req: cPost + "Content-Length:\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-6.3/CL-overflow", req: cPost + "Content-Length: 99999999999999999999\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-6.3/CL-hex", req: cPost + "Content-Length: 0x5\r\n\r\nhello", status: []int{400}, close: true},
	{name: "RFC9110-8.6/CL-list-that-differs", req: cPost + "Content-Length: 5, 6\r\n\r\nhello!", status: []int{400}, close: true},
	{name: "RFC9110-8.6/CL-list-of-one-value", req: cPost + "Content-Length: 5, 5\r\n\r\nhello", status: []int{400}, close: true},
	{name: "RFC9110-8.6/CL-fields-that-differ", req: cPost + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", status: []int{400}, close: true},
	{name: "RFC9110-8.6/CL-fields-that-agree", req: cPost + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello" + cGet, status: []int{200, 200}},
	{name: "RFC9112-6.3/CL-leading-zeros", req: cPost + "Content-Length: 005\r\n\r\nhello" + cGet, status: []int{200, 200}},
	{name: "RFC9112-6.3/no-length-no-body", req: cPost + "\r\n" + cGet, status: []int{200, 200}},
	{name: "RFC9112-6.3/body-looks-like-a-request", req: cPost + "Content-Length: 27\r\n\r\n" + cGet[:27] + cGet, status: []int{200, 200}},

	// Chunked transfer coding (RFC 9112 §7.1).
	{name: "RFC9112-7.1/chunked", req: cChunked + "5\r\nhello\r\n0\r\n\r\n" + cGet, status: []int{200, 200}},
	{name: "RFC9112-7.1/chunk-size-upper-case-hex", req: cChunked + "A\r\n0123456789\r\n0\r\n\r\n", status: []int{200}},
	{name: "RFC9112-7.1/chunk-size-not-hex", req: cChunked + "g\r\nhello\r\n0\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-7.1/chunk-size-0x-prefix", req: cChunked + "0x5\r\nhello\r\n0\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-7.1/chunk-size-underscore", req: cChunked + "1_0\r\n0123456789abcdef\r\n0\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-7.1/chunk-size-plus", req: cChunked + "+5\r\nhello\r\n0\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-7.1/chunk-size-leading-space", req: cChunked + " 5\r\nhello\r\n0\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-7.1/chunk-size-trailing-space", req: cChunked + "5 \r\nhello\r\n0\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-7.1/chunk-data-longer-than-its-size", req: cChunked + "5\r\nhello!!\r\n0\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-7.1/chunk-data-bare-LF", req: cChunked + "5\r\nhello\n0\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-7.1/chunk-size-bare-CR", req: cChunked + "5\rhello\r\n0\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-7.1.1/extension-name-and-value", req: cChunked + "5;a=b;c\r\nhello\r\n0;last\r\n\r\n", status: []int{200}},
	{name: "RFC9112-7.1.1/extension-quoted-value", req: cChunked + "5;a=\"q \\\" s\"\r\nhello\r\n0\r\n\r\n", status: []int{200}},
	{name: "RFC9112-7.1.1/extension-BWS", req: cChunked + "5 ; a = b ;c\r\nhello\r\n0\r\n\r\n", status: []int{200}},
	{name: "RFC9112-7.1.1/extension-bare-semicolon", req: cChunked + "5;\r\nhello\r\n0\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-7.1.1/extension-name-not-a-token", req: cChunked + "5;bad[=x\r\nhello\r\n0\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-7.1.1/extension-empty-value", req: cChunked + "5;a=\r\nhello\r\n0\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-7.1.1/extension-value-not-a-token", req: cChunked + "5;a=b@c\r\nhello\r\n0\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-7.1.1/extension-unterminated-quote", req: cChunked + "5;a=\"b\r\nhello\r\n0\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-7.1.1/extension-whitespace-before-CRLF", req: cChunked + "5;a=b \r\nhello\r\n0\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-7.1.1/extension-control", req: cChunked + "5;a\x01\r\nhello\r\n0\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-7.1.1/extension-bare-LF", req: cChunked + "5;a\nhello\r\n0\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-7.1.2/trailer-fields-ignored", req: cChunked + "5\r\nhello\r\n0\r\nHost: evil\r\nContent-Length: 50\r\n\r\n" + cGet, status: []int{200, 200}, check: bodyIs("host=h")},
	{name: "RFC9112-7.1.2/trailer-obs-fold", req: cChunked + "0\r\nX: a\r\n b\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9112-7.1.2/trailer-space-before-colon", req: cChunked + "0\r\nX : a\r\n\r\n", status: []int{400}, close: true},
	{name: "RFC9110-15.5.14/body-over-the-limit-is-413", req: cPost + "Content-Length: 999999999\r\n\r\n", status: []int{413}, close: true},

	// Expect (RFC 9110 §10.1.1).
	{name: "RFC9110-10.1.1/100-continue", req: cPost + "Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhello", status: []int{200}, cont: true},
	{name: "RFC9110-10.1.1/100-continue-any-case", req: cPost + "Expect: 100-Continue\r\nContent-Length: 5\r\n\r\nhello", status: []int{200}, cont: true},
	{name: "RFC9110-10.1.1/other-expectation-is-417", req: cPost + "Expect: 200-ok\r\nContent-Length: 5\r\n\r\nhello", status: []int{417}, close: true},
	{name: "RFC9110-10.1.1/100-continue-with-parameter-is-417", req: cPost + "Expect: 100-continue;a=b\r\nContent-Length: 5\r\n\r\nhello", status: []int{417}, close: true},
	{name: "RFC9110-10.1.1/100-continue-in-HTTP-1.0-ignored", req: "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello", status: []int{200}, close: true},

	// Responses (RFC 9110 §6.6.1, §8.6, §9.3.2, §15).
	{name: "RFC9110-6.6.1/date-in-IMF-fixdate", req: cGet, status: []int{200}, check: hasDate},
	{name: "RFC9110-6.6.1/date-on-errors", req: "GET / HTTP/1.1\r\n\r\n", status: []int{400}, close: true, check: hasDate},
	{name: "RFC9110-8.6/no-content-length-in-204", req: "GET /204 HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{204}, check: noLength},
	{name: "RFC9110-8.6/no-content-length-in-304", req: "GET /304 HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{304}, check: noLength},
	{name: "RFC9110-9.3.2/HEAD-without-body", req: "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n" + "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{200, 200}},
	{name: "RFC9110-15.2/no-1xx-to-HTTP-1.0", req: "PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx", status: []int{200}, close: true},
	{name: "RFC9110-7.8/upgrade-ignored", req: "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", status: []int{200}},

	// Connection management (RFC 9112 §9).
	{name: "RFC9112-9.3/HTTP-1.1-persistent", req: cGet + cGet, status: []int{200, 200}},
	{name: "RFC9112-9.3/HTTP-1.0-closes", req: "GET / HTTP/1.0\r\n\r\n", status: []int{200}, close: true},
	{name: "RFC9112-9.3/HTTP-1.0-keep-alive", req: "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", status: []int{200}},
	{name: "RFC9112-9.6/close-honoured", req: "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", status: []int{200}, close: true},
	{name: "RFC9112-9.6/close-in-a-token-list", req: "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, CLOSE\r\n\r\n", status: []int{200}, close: true},
	{name: "RFC9112-9.6/nothing-after-close", req: "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n" + cGet, status: []int{200}, close: true},
	{name: "RFC9112-9.3.2/pipelined-in-order", req: cGet + "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n" + "GET /204 HTTP/1.1\r\nHost: h\r\n\r\n", status: []int{200, 200, 204}},
	{name: "RFC9112-9.3.2/requests-before-an-error-answered", req: cGet + cGet + "GET / HTTP/1.1\r\nHost h\r\n\r\n" + cGet, status: []int{200, 200, 400}, close: true},
}

var requestLine = regexp.MustCompile(`(?m)^([A-Z]+) \S+ HTTP/`)

func bodyIs(want string) func(*testing.T, *http.Response, string) {
	return func(t *testing.T, _ *http.Response, body string) {
		t.Helper()
		if body != want {
			t.Errorf("got body %q, want %q", body, want)
		}
	}
}

func hasDate(t *testing.T, resp *http.Response, _ string) {
	t.Helper()
	d := resp.Header.Get("Date")
	if _, err := time.Parse(http.TimeFormat, d); err != nil || len(resp.Header.Values("Date")) != 1 {
		t.Errorf("got Date %q (%d fields), want one IMF-fixdate: %v", d, len(resp.Header.Values("Date")), err)
	}
}

func noLength(t *testing.T, resp *http.Response, body string) {
	t.Helper()
	if _, ok := resp.Header["Content-Length"]; ok || body != "" {
		t.Errorf("got Content-Length %q body %q, want neither", resp.Header.Get("Content-Length"), body)
	}
}

// readConformance reads the responses a row expects from br, checks their
// statuses, the interim 100 and the row's check, and returns whether the
// last one said "Connection: close".
func readConformance(t *testing.T, br *bufio.Reader, req string, status []int, cont bool,
	check func(*testing.T, *http.Response, string)) bool {
	t.Helper()
	// The method of each request, for the responses to HEAD have no body.
	methods := requestLine.FindAllStringSubmatch(req, -1)
	closed, interim := false, 0
	for k, want := range status {
		method := "GET"
		if k < len(methods) {
			method = methods[k][1]
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		for err == nil && resp.StatusCode/100 == 1 {
			interim++
			if resp.StatusCode != 100 {
				t.Fatalf("got interim %d, want 100", resp.StatusCode)
			}
			resp, err = http.ReadResponse(br, &http.Request{Method: method})
		}
		if err != nil {
			t.Fatalf("response %d: %v", k, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("response %d body: %v", k, err)
		}
		if resp.StatusCode != want {
			t.Fatalf("response %d: got %d %q, want %d", k, resp.StatusCode, body, want)
		}
		if k == len(status)-1 && check != nil {
			check(t, resp, string(body))
		}
		closed = resp.Close
	}
	if got := interim > 0; got != cont {
		t.Errorf("got %d interim responses, want 100 Continue %v", interim, cont)
	}
	return closed
}

// TestConformance runs every row through the per-connection protocol
// (connState.serve, whole and split at every byte) and through a real loop
// over loopback, where a row that must close is followed by the server's
// EOF and one that must not by a second request that is answered.
func TestConformance(t *testing.T) {
	srv := New(Options{Handler: conformanceHandler()})
	srv.rs.setDate(testDate)
	addr, _, _ := startHandler(t, Options{Handler: conformanceHandler()})
	for _, tt := range conformanceTests {
		t.Run(tt.name, func(t *testing.T) {
			t.Run("serve", func(t *testing.T) {
				splits := []int{len(tt.req)}
				if len(tt.req) < 300 {
					for k := 1; k < len(tt.req); k++ {
						splits = append(splits, k)
					}
				}
				for _, k := range splits {
					var s connState
					out, act, _, rest := run(&s, srv, []byte(tt.req[:k]), []byte(tt.req[k:]))
					br := bufio.NewReader(bytes.NewReader(out))
					closed := readConformance(t, br, tt.req, tt.status, tt.cont, tt.check)
					if extra, _ := io.ReadAll(br); len(extra) > 0 {
						t.Fatalf("split at %d: got %q after the responses, want nothing", k, extra)
					}
					if got := act != actKeep; got != tt.close || closed != tt.close {
						t.Fatalf("split at %d: got action %d, Connection: close %v; want close %v", k, act, closed, tt.close)
					}
					if !tt.close && len(rest) > 0 {
						t.Fatalf("split at %d: got %q unconsumed, want none", k, rest)
					}
				}
			})
			t.Run("loopback", func(t *testing.T) {
				c := testkit.Dial(t, addr)
				errc := sendAsync(c, []byte(tt.req))
				br := bufio.NewReader(c)
				closed := readConformance(t, br, tt.req, tt.status, tt.cont, tt.check)
				if closed != tt.close {
					t.Errorf("got Connection: close %v, want %v", closed, tt.close)
				}
				if tt.close {
					expectEOF(t, br)
				} else {
					if _, err := io.WriteString(c, cGet); err != nil {
						t.Fatal(err)
					}
					readConformance(t, br, cGet, []int{200}, false, bodyIs("host=h"))
				}
				if err := <-errc; err != nil {
					t.Errorf("got write error %v, want nil", err)
				}
			})
		})
	}
}
