package calc_test

import (
	"errors"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"github.com/prefork/prefork/proto/calc"
)

// A reference implementation of the protocol, written independently of the
// package's: regular expressions and strings for syntax, strconv for operand
// ranges and math/big for arithmetic, so it never overflows.

var (
	operandRE = regexp.MustCompile(`^-?[0-9]+$`)
	lenRE     = regexp.MustCompile(`^[0-9]{1,4}$`)
)

// refEval is the reference for calc.Eval.
func refEval(payload string) (int64, calc.Code) {
	parts := strings.Split(payload, " ")
	if len(parts) != 3 || !operandRE.MatchString(parts[0]) || !operandRE.MatchString(parts[2]) {
		return 0, calc.CodeMalformed
	}
	switch parts[1] {
	case "+", "-", "*", "/", "%":
	default:
		return 0, calc.CodeMalformed
	}
	x, errX := strconv.ParseInt(parts[0], 10, 64)
	y, errY := strconv.ParseInt(parts[2], 10, 64)
	for _, err := range []error{errX, errY} {
		if errors.Is(err, strconv.ErrRange) {
			return 0, calc.CodeOverflow
		} else if err != nil {
			panic("refEval: " + err.Error()) // the regexp let through a syntax error
		}
	}
	bx, by := big.NewInt(x), big.NewInt(y)
	var r big.Int
	switch parts[1] {
	case "+":
		r.Add(bx, by)
	case "-":
		r.Sub(bx, by)
	case "*":
		r.Mul(bx, by)
	case "/":
		if y == 0 {
			return 0, calc.CodeDivisionByZero
		}
		r.Quo(bx, by) // truncated
	case "%":
		if y == 0 {
			return 0, calc.CodeModuloByZero
		}
		// The remainder is defined by the quotient: it must fit as well.
		if q := new(big.Int).Quo(bx, by); !q.IsInt64() {
			return 0, calc.CodeOverflow
		}
		r.Rem(bx, by) // sign of the dividend
	}
	if !r.IsInt64() {
		return 0, calc.CodeOverflow
	}
	return r.Int64(), calc.CodeOK
}

type refStatus int

const (
	refDone       refStatus = iota // every frame complete
	refIncomplete                  // stopped at a frame that needs more bytes
	refBad                         // stopped at a framing error
)

// refProcess is a lazy reference for calc.Process: it finds a header's end by
// its CRLF, so it sees some errors later than Process does (it calls "12345"
// incomplete), but never an error Process misses.
func refProcess(in string) (out string, consumed int, status refStatus) {
	for {
		if in[consumed:] == "" {
			return out, consumed, refDone
		}
		rest := in[consumed:]
		idx := strings.Index(rest, "\r\n")
		if idx < 0 {
			return out, consumed, refIncomplete
		}
		if !lenRE.MatchString(rest[:idx]) {
			return out, consumed, refBad
		}
		n, err := strconv.Atoi(rest[:idx])
		if err != nil || n < 1 || n > calc.MaxPayload {
			return out, consumed, refBad
		}
		body := rest[idx+2:]
		if len(body) < n+2 {
			return out, consumed, refIncomplete
		}
		if body[n:n+2] != "\r\n" {
			return out, consumed, refBad
		}
		out += resp(refEval(body[:n]))
		consumed += idx + 2 + n + 2
	}
}
