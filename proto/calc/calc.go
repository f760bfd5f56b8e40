package calc

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
)

// MaxPayload is the largest PAYLOAD length a request frame may declare.
const MaxPayload = 4096

// maxLenDigits is the most digits a frame's LEN may have.
const maxLenDigits = 4

// Code is the status a response carries after its result.
type Code uint8

// The response codes. When the code is not CodeOK the result is 0.
const (
	// CodeOK: the result is the value of the expression.
	CodeOK Code = 0
	// CodeDivisionByZero: the operator is / and Y is 0.
	CodeDivisionByZero Code = 1
	// CodeModuloByZero: the operator is % and Y is 0.
	CodeModuloByZero Code = 2
	// CodeMalformed: the payload is not "X OP Y" (unknown operator, bad
	// operand, wrong spacing, ...).
	CodeMalformed Code = 3
	// CodeOverflow: an operand literal or the result (for %, the quotient)
	// does not fit in an int64.
	CodeOverflow Code = 4
)

// String returns a short description of the code.
func (c Code) String() string {
	switch c {
	case CodeOK:
		return "ok"
	case CodeDivisionByZero:
		return "division by zero"
	case CodeModuloByZero:
		return "modulo by zero"
	case CodeMalformed:
		return "malformed expression"
	case CodeOverflow:
		return "overflow"
	}
	return "Code(" + strconv.Itoa(int(c)) + ")"
}

// ErrBadFrame is the error Process returns, wrapped with a detail, when a
// request frame's header or trailing CRLF is malformed. The connection cannot
// be resynchronised after it, so a server closes the connection.
var ErrBadFrame = errors.New("calc: malformed frame")

// The framing errors, built once so that even the error path does not
// allocate. Each wraps ErrBadFrame.
var (
	errLenEmpty    = fmt.Errorf("%w: empty length", ErrBadFrame)
	errLenDigit    = fmt.Errorf("%w: length is not a decimal number", ErrBadFrame)
	errLenTooLong  = fmt.Errorf("%w: length has more than %d digits", ErrBadFrame, maxLenDigits)
	errLenRange    = fmt.Errorf("%w: length out of range 1..%d", ErrBadFrame, MaxPayload)
	errLenCRLF     = fmt.Errorf("%w: length not followed by CRLF", ErrBadFrame)
	errPayloadCRLF = fmt.Errorf("%w: payload not followed by CRLF", ErrBadFrame)
)

// Eval evaluates a request payload "X OP Y" and returns its result and code.
// The result is 0 whenever the code is not CodeOK. See the package
// documentation for the grammar and the order in which codes are decided.
// Eval does not allocate.
func Eval(payload []byte) (result int64, code Code) {
	x, i, xovf, ok := parseOperand(payload, 0)
	// After X: exactly " OP " and at least one byte of Y.
	if !ok || len(payload)-i < 4 || payload[i] != ' ' || payload[i+2] != ' ' {
		return 0, CodeMalformed
	}
	op := payload[i+1]
	switch op {
	case '+', '-', '*', '/', '%':
	default:
		return 0, CodeMalformed
	}
	y, j, yovf, ok := parseOperand(payload, i+3)
	if !ok || j != len(payload) {
		return 0, CodeMalformed
	}
	if xovf || yovf {
		return 0, CodeOverflow
	}
	switch op {
	case '+':
		s := x + y
		if (x^s)&(y^s) < 0 { // both operands' signs differ from the sum's
			return 0, CodeOverflow
		}
		return s, CodeOK
	case '-':
		d := x - y
		if (x^y)&(x^d) < 0 { // signs differ and the result's differs from x's
			return 0, CodeOverflow
		}
		return d, CodeOK
	case '*':
		return mul(x, y)
	case '/':
		if y == 0 {
			return 0, CodeDivisionByZero
		}
		if x == math.MinInt64 && y == -1 {
			return 0, CodeOverflow
		}
		return x / y, CodeOK
	default: // '%'
		if y == 0 {
			return 0, CodeModuloByZero
		}
		if x == math.MinInt64 && y == -1 { // the quotient overflows
			return 0, CodeOverflow
		}
		return x % y, CodeOK
	}
}

// mul multiplies with overflow detection on the magnitudes.
func mul(x, y int64) (int64, Code) {
	hi, lo := bits.Mul64(abs(x), abs(y))
	if hi != 0 {
		return 0, CodeOverflow
	}
	if (x < 0) != (y < 0) {
		if lo > 1<<63 {
			return 0, CodeOverflow
		}
		return -int64(lo), CodeOK // lo == 1<<63 gives MinInt64, as it should
	}
	if lo > math.MaxInt64 {
		return 0, CodeOverflow
	}
	return int64(lo), CodeOK
}

// abs returns |v| as a uint64, correct for MinInt64 too.
func abs(v int64) uint64 {
	if v < 0 {
		return -uint64(v)
	}
	return uint64(v)
}

// parseOperand parses ["-"] DIGIT+ at p[i:] and returns the value, the index
// after it, whether the literal is out of the int64 range (value is then 0),
// and whether there was an operand at all. Digits after an overflow are still
// scanned so that the caller can check the rest of the syntax.
func parseOperand(p []byte, i int) (v int64, next int, overflow, ok bool) {
	neg := false
	if i < len(p) && p[i] == '-' {
		neg = true
		i++
	}
	limit := uint64(math.MaxInt64)
	if neg {
		limit++ // |MinInt64|
	}
	start := i
	var mag uint64
	for ; i < len(p); i++ {
		d := uint64(p[i] - '0')
		if d > 9 {
			break
		}
		if overflow {
			continue
		}
		if mag > limit/10 || mag*10 > limit-d {
			overflow = true
			continue
		}
		mag = mag*10 + d
	}
	if i == start {
		return 0, i, false, false
	}
	if overflow {
		return 0, i, true, true
	}
	if neg {
		return -int64(mag), i, false, true // mag == 1<<63 gives MinInt64
	}
	return int64(mag), i, false, true
}

// Process answers every complete request frame at the start of in, appending
// the responses to out, and returns how many bytes of in those frames took
// and the extended out. It stops at the first incomplete frame: consumed then
// points at its start, and the caller calls again with the same bytes plus
// whatever arrives next.
//
// A malformed frame header or a missing CRLF after a payload is reported as
// an error wrapping ErrBadFrame; consumed and out then cover the good frames
// before it. Errors are detected as soon as the offending byte is in in, so
// feeding the same bytes in any number of pieces gives the same responses,
// consumed total and error.
//
// Process does not allocate when out has room for the responses.
func Process(in, out []byte) (consumed int, outAppended []byte, err error) {
	consumed, _, outAppended, err = process(in, out)
	return consumed, outAppended, err
}

// process is Process that also counts the frames answered.
func process(in, out []byte) (consumed, frames int, _ []byte, err error) {
	i := 0
	for i < len(in) {
		// LEN: 1 to 4 digits, value 1..MaxPayload, then CRLF.
		j, n := i, 0
		for {
			if j == len(in) {
				return i, frames, out, nil
			}
			c := in[j]
			if c == '\r' {
				break
			}
			if c == '\n' {
				return i, frames, out, errLenCRLF
			}
			if c < '0' || c > '9' {
				return i, frames, out, errLenDigit
			}
			if j-i == maxLenDigits {
				return i, frames, out, errLenTooLong
			}
			n = n*10 + int(c-'0')
			j++
			if n > MaxPayload { // four digits over 4096: no continuation is valid
				return i, frames, out, errLenRange
			}
		}
		if j == i {
			return i, frames, out, errLenEmpty
		}
		if n == 0 {
			return i, frames, out, errLenRange
		}
		if j+1 == len(in) {
			return i, frames, out, nil
		}
		if in[j+1] != '\n' {
			return i, frames, out, errLenCRLF
		}
		// PAYLOAD, then CRLF.
		start := j + 2
		end := start + n
		if end >= len(in) {
			return i, frames, out, nil
		}
		if in[end] != '\r' {
			return i, frames, out, errPayloadCRLF
		}
		if end+1 == len(in) {
			return i, frames, out, nil
		}
		if in[end+1] != '\n' {
			return i, frames, out, errPayloadCRLF
		}
		r, code := Eval(in[start:end])
		out = AppendResponse(out, r, code)
		frames++
		i = end + 2
	}
	return i, frames, out, nil
}

// AppendResponse appends the response frame "LEN\r\nRESULT CODE\r\n" to dst.
// RESULT is written as 0 when code is not CodeOK.
func AppendResponse(dst []byte, result int64, code Code) []byte {
	if code != CodeOK {
		result = 0
	}
	dst = strconv.AppendInt(dst, int64(intLen(result)+1+uintLen(uint64(code))), 10)
	dst = append(dst, '\r', '\n')
	dst = strconv.AppendInt(dst, result, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(code), 10)
	return append(dst, '\r', '\n')
}

// AppendRequest appends the request frame for "X OP Y" to dst. op is written
// as given; a byte other than + - * / % makes a request the server answers
// with CodeMalformed.
func AppendRequest(dst []byte, x int64, op byte, y int64) []byte {
	dst = strconv.AppendInt(dst, int64(intLen(x)+3+intLen(y)), 10)
	dst = append(dst, '\r', '\n')
	dst = strconv.AppendInt(dst, x, 10)
	dst = append(dst, ' ', op, ' ')
	dst = strconv.AppendInt(dst, y, 10)
	return append(dst, '\r', '\n')
}

// AppendRawRequest appends a request frame carrying payload as is, for
// clients and tests that send arbitrary payloads. It does not check the
// length: a payload that is empty or longer than MaxPayload gives a frame the
// server rejects.
func AppendRawRequest(dst, payload []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(payload)), 10)
	dst = append(dst, '\r', '\n')
	dst = append(dst, payload...)
	return append(dst, '\r', '\n')
}

// intLen returns the length of v's decimal form.
func intLen(v int64) int {
	if v < 0 {
		return 1 + uintLen(abs(v))
	}
	return uintLen(uint64(v))
}

// uintLen returns the number of decimal digits of v.
func uintLen(v uint64) int {
	n := 1
	for v >= 10 {
		v /= 10
		n++
	}
	return n
}
