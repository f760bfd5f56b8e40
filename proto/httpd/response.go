package httpd

import (
	"strconv"
	"time"
)

// Body is the greeting's body (Greeting).
const Body = "Hello, World!"

// dateLayout is the IMF-fixdate format of RFC 9110 §5.6.7 (net/http's
// TimeFormat); formatted dates are always 29 bytes long.
const dateLayout = "Mon, 02 Jan 2006 15:04:05 GMT"

const dateLen = len(dateLayout)

// continue100 is the interim response to "Expect: 100-continue".
const continue100 = "HTTP/1.1 100 Continue\r\n\r\n"

// conn says which Connection header a response carries.
type conn uint8

const (
	connNone      conn = iota // HTTP/1.1 keep-alive: the default needs no header
	connClose                 // "Connection: close"; the connection closes after it
	connKeepAlive             // "Connection: keep-alive", for HTTP/1.0 clients
	numConn
)

// connEnds are connLines with the empty line that ends a head.
var connEnds = [numConn]string{
	connNone:      "\r\n",
	connClose:     "Connection: close\r\n\r\n",
	connKeepAlive: "Connection: keep-alive\r\n\r\n",
}

var connLines = [numConn]string{
	connNone:      "",
	connClose:     "Connection: close\r\n",
	connKeepAlive: "Connection: keep-alive\r\n",
}

// errStatuses are the statuses of error responses, by index in
// responses.errs.
var errStatuses = [...]struct {
	code int
	text string
}{
	{400, "Bad Request"},
	{408, "Request Timeout"},
	{413, "Content Too Large"},
	{414, "URI Too Long"},
	{417, "Expectation Failed"},
	{431, "Request Header Fields Too Large"},
	{501, "Not Implemented"},
	{505, "HTTP Version Not Supported"},
}

// tmpl is a complete response with room for the date, which setDate patches
// in place once a second.
type tmpl struct {
	b    []byte // status line, headers, body
	date int    // offset of the date in b
	head int    // length of b without the body (what HEAD gets)
}

// responses holds every response the server sends, prebuilt: answering is
// one append of a template. The date in them is refreshed at most once per
// second, when the loop's clock has moved to another second.
type responses struct {
	sec int64 // the Unix second of the date in the templates
	// serverDate is "Server: NAME\r\nDate: <date>\r\n", the date at
	// serverDateAt.
	serverDate   []byte
	serverDateAt int
	// ok200 is "HTTP/1.1 200 OK\r\n" and serverDate.
	ok200 []byte
	// prefix caches the head of the last response with a length, up to
	// "Content-Length: ": a handler that sends the same status and fields
	// every time (most do) gets its head in one append, its length and
	// Connection field in two more. prefixStatus, prefixHdr and prefixSec
	// are its key.
	prefix       []byte
	prefixStatus int
	prefixHdr    []byte
	prefixSec    int64
	errs         [len(errStatuses)]tmpl
}

func newResponses(server string) *responses {
	rs := &responses{sec: -1, serverDate: []byte("Server: " + server + "\r\nDate: " + dateLayout + "\r\n")}
	rs.serverDateAt = len(rs.serverDate) - 2 - dateLen
	rs.ok200 = append([]byte("HTTP/1.1 200 OK\r\n"), rs.serverDate...)
	for k, st := range errStatuses {
		rs.errs[k] = buildTmpl(strconv.Itoa(st.code)+" "+st.text, server, connClose, st.text+"\n")
	}
	rs.setDate(time.Unix(0, 0))
	return rs
}

func buildTmpl(status, server string, c conn, body string) tmpl {
	var t tmpl
	b := []byte("HTTP/1.1 " + status + "\r\nServer: " + server + "\r\nDate: ")
	t.date = len(b)
	b = append(b, dateLayout...) // placeholder of the right length
	b = append(b, "\r\nContent-Type: text/plain\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n"...)
	b = append(b, connLines[c]...)
	b = append(b, "\r\n"...)
	t.head = len(b)
	t.b = append(b, body...)
	return t
}

// setDate writes t's second into every template.
func (rs *responses) setDate(t time.Time) {
	rs.sec = t.Unix()
	var buf [dateLen]byte
	d := t.UTC().AppendFormat(buf[:0], dateLayout)
	if len(d) != dateLen { // years past 9999 do not fit; keep the last date
		return
	}
	copy(rs.serverDate[rs.serverDateAt:], d)
	copy(rs.ok200[len(rs.ok200)-len(rs.serverDate)+rs.serverDateAt:], d)
	for k := range rs.errs {
		copy(rs.errs[k].b[rs.errs[k].date:], d)
	}
}

// appendHead appends a response's status line and header section: Server
// and Date, the handler's fields, Content-Length (for a status with a body),
// the Connection field and the empty line.
func (rs *responses) appendHead(out []byte, res *Response, c conn) []byte {
	return rs.appendHeadLength(out, res, c, true)
}

// appendHeadNoLength is appendHead for a body of unknown length (streamed).
func (rs *responses) appendHeadNoLength(out []byte, res *Response, c conn) []byte {
	return rs.appendHeadLength(out, res, c, false)
}

func (rs *responses) appendHeadLength(out []byte, res *Response, c conn, length bool) []byte {
	if length && bodyAllowed(res.status) {
		if res.status != rs.prefixStatus || rs.prefixSec != rs.sec || string(res.hdr) != string(rs.prefixHdr) {
			p := rs.prefix[:0]
			if res.status == 200 {
				p = append(p, rs.ok200...)
			} else {
				p = appendStatusLine(p, res.status)
				p = append(p, rs.serverDate...)
			}
			p = append(p, res.hdr...)
			rs.prefix = append(p, "Content-Length: "...)
			rs.prefixStatus, rs.prefixSec = res.status, rs.sec
			rs.prefixHdr = append(rs.prefixHdr[:0], res.hdr...)
		}
		out = append(out, rs.prefix...)
		out = appendDecimal(out, int(res.bodyLen()))
		return append(out, lengthEnds[c]...)
	}
	if res.status == 200 {
		out = append(out, rs.ok200...)
	} else {
		out = appendStatusLine(out, res.status)
		out = append(out, rs.serverDate...)
	}
	out = append(out, res.hdr...)
	return append(out, connEnds[c]...)
}

// appendDecimal appends n >= 0 in decimal.
func appendDecimal(out []byte, n int) []byte {
	if n < 10 {
		return append(out, byte('0'+n))
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return append(out, b[i:]...)
}

// lengthEnds end a Content-Length line, add the Connection field and the
// empty line.
var lengthEnds = [numConn]string{
	connNone:      "\r\n\r\n",
	connClose:     "\r\nConnection: close\r\n\r\n",
	connKeepAlive: "\r\nConnection: keep-alive\r\n\r\n",
}

// appendError appends the error response for err, an *Error.
func (rs *responses) appendError(out []byte, err *Error, head bool) []byte {
	k := 0
	for i, st := range errStatuses {
		if st.code == err.Status {
			k = i
		}
	}
	t := &rs.errs[k]
	if head {
		return append(out, t.b[:t.head]...)
	}
	return append(out, t.b...)
}
