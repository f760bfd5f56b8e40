// Package calc implements the calc protocol: a client sends integer
// expressions, the server answers each with its value and a status code.
//
// # Framing
//
// Both directions carry length-prefixed frames:
//
//	frame   = LEN CRLF BODY CRLF
//	LEN     = 1*4DIGIT          ; decimal byte length of BODY
//	CRLF    = %x0D %x0A
//
// A request's BODY is its PAYLOAD, of 1 to 4096 (MaxPayload) bytes. LEN may
// have leading zeros ("0005" is 5) but at most 4 digits. A request header is
// malformed when LEN is empty, holds a byte that is not a digit, has more
// than 4 digits, is 0 or above 4096, or is not followed by CRLF (a bare LF
// included); a request is also malformed when its payload is not followed by
// CRLF. Such a framing error cannot be recovered from, so the server answers
// the frames before it, then closes the connection. Errors are found as soon
// as the offending byte arrives: "12345" is rejected before any CRLF.
//
// Frames may be pipelined: every complete frame of a read is answered, in
// order, and a frame may arrive in any number of pieces, down to one byte at a
// time.
//
// # Requests
//
//	PAYLOAD = OPERAND SP OP SP OPERAND
//	OPERAND = ["-"] 1*DIGIT     ; a signed 64-bit integer, leading zeros allowed
//	OP      = "+" / "-" / "*" / "/" / "%"
//	SP      = %x20              ; exactly one space
//
// Nothing else is allowed: no "+" sign, no other white space, no empty operand,
// nothing before the first operand or after the second.
//
// # Responses
//
// A response BODY is "RESULT SP CODE": RESULT the value as a signed decimal
// integer, 0 when CODE is not 0, and CODE one of
//
//	0  ok
//	1  division by zero (OP is "/" and Y is 0)
//	2  modulo by zero (OP is "%" and Y is 0)
//	3  malformed payload: not of the PAYLOAD form above
//	4  overflow: an operand literal or the result does not fit in an int64
//
// Division truncates toward zero and the remainder has the sign of the dividend
// (Go's / and %), so x == (x/y)*y + x%y. Overflow covers every operator:
// MinInt64 / -1 and also MinInt64 % -1, whose remainder 0 would fit but whose
// quotient, which defines it, does not; "%" thus fails exactly where "/" does.
//
// When several codes could apply, the first that applies in this order wins:
// 3 (the whole payload is checked first), 4 for an operand literal out of
// range, 1 or 2 for a zero divisor, 4 for the result. So
// "99999999999999999999 ^ 1" is 3 and "99999999999999999999 / 0" is 4.
//
// # Examples
//
//	request                                response
//	"5\r\n1 + 2\r\n"                       "3\r\n3 0\r\n"
//	"6\r\n10 / 0\r\n"                      "3\r\n0 1\r\n"
//	"6\r\n-7 / 2\r\n"                      "4\r\n-3 0\r\n"
//	"6\r\n-7 % 2\r\n"                      "4\r\n-1 0\r\n"
//	"6\r\n7 % -2\r\n"                      "3\r\n1 0\r\n"
//	"5\r\n1 ^ 2\r\n"                       "3\r\n0 3\r\n"
//	"6\r\n1  + 2\r\n"                      "3\r\n0 3\r\n"
//	"25\r\n-9223372036854775808 / -1\r\n"  "3\r\n0 4\r\n"
//	"5\r\n1 + 2\r\n2\r\n1 + 2\r\n"         "3\r\n3 0\r\n", then the server closes
//	"5\r\n1 + 2\r\n0005\r\n1 + 2\r\n"      "3\r\n3 0\r\n3\r\n3 0\r\n"
//
// In the next to last example the second frame's LEN, 2, ends its payload
// after "1 ", which is not followed by CRLF: a framing error.
//
// # Server
//
// New returns a loop.Handler serving the protocol. The core, Eval and Process,
// works on byte slices without sockets and does not allocate; AppendRequest,
// AppendRawRequest and AppendResponse encode frames.
package calc
