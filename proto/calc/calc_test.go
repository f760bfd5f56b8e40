package calc_test

import (
	"bytes"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/prefork/prefork/proto/calc"
)

const (
	minStr = "-9223372036854775808"
	maxStr = "9223372036854775807"
)

func TestEval(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		result  int64
		code    calc.Code
	}{
		// Every operator.
		{"add", "1 + 2", 3, calc.CodeOK},
		{"sub", "1 - 2", -1, calc.CodeOK},
		{"mul", "6 * 7", 42, calc.CodeOK},
		{"div", "42 / 6", 7, calc.CodeOK},
		{"mod", "43 % 6", 1, calc.CodeOK},
		// Negatives.
		{"add negatives", "-1 + -2", -3, calc.CodeOK},
		{"sub negative", "1 - -2", 3, calc.CodeOK},
		{"mul neg pos", "-6 * 7", -42, calc.CodeOK},
		{"mul neg neg", "-6 * -7", 42, calc.CodeOK},
		{"mul by zero", "-6 * 0", 0, calc.CodeOK},
		{"zero operands", "0 + 0", 0, calc.CodeOK},
		{"negative zero", "-0 + 0", 0, calc.CodeOK},
		{"leading zeros", "007 + -0003", 4, calc.CodeOK},
		{"many leading zeros", strings.Repeat("0", 100) + "5 * 2", 10, calc.CodeOK},
		// Truncation toward zero.
		{"div truncates positive", "7 / 2", 3, calc.CodeOK},
		{"div truncates negative dividend", "-7 / 2", -3, calc.CodeOK},
		{"div truncates negative divisor", "7 / -2", -3, calc.CodeOK},
		{"div both negative", "-7 / -2", 3, calc.CodeOK},
		{"div smaller dividend", "1 / 2", 0, calc.CodeOK},
		{"div negative smaller dividend", "-1 / 2", 0, calc.CodeOK},
		// % takes the sign of the dividend.
		{"mod positive", "7 % 2", 1, calc.CodeOK},
		{"mod negative dividend", "-7 % 2", -1, calc.CodeOK},
		{"mod negative divisor", "7 % -2", 1, calc.CodeOK},
		{"mod both negative", "-7 % -2", -1, calc.CodeOK},
		{"mod exact", "-8 % 2", 0, calc.CodeOK},
		// Division and modulo by zero.
		{"div by zero", "10 / 0", 0, calc.CodeDivisionByZero},
		{"div zero by zero", "0 / 0", 0, calc.CodeDivisionByZero},
		{"div by negative zero", "10 / -0", 0, calc.CodeDivisionByZero},
		{"div min by zero", minStr + " / 0", 0, calc.CodeDivisionByZero},
		{"mod by zero", "10 % 0", 0, calc.CodeModuloByZero},
		{"mod by zero padded", "10 % 000", 0, calc.CodeModuloByZero},
		// Limits that fit.
		{"max literal", maxStr + " + 0", math.MaxInt64, calc.CodeOK},
		{"min literal", minStr + " + 0", math.MinInt64, calc.CodeOK},
		{"add to max", "9223372036854775806 + 1", math.MaxInt64, calc.CodeOK},
		{"sub to min", "-9223372036854775807 - 1", math.MinInt64, calc.CodeOK},
		{"max minus max", maxStr + " - " + maxStr, 0, calc.CodeOK},
		{"min minus min", minStr + " - " + minStr, 0, calc.CodeOK},
		{"max plus min", maxStr + " + " + minStr, -1, calc.CodeOK},
		{"mul to min", "-4611686018427387904 * 2", math.MinInt64, calc.CodeOK},
		{"mul to min swapped", "2 * -4611686018427387904", math.MinInt64, calc.CodeOK},
		{"mul min by one", minStr + " * 1", math.MinInt64, calc.CodeOK},
		{"mul max by minus one", maxStr + " * -1", -math.MaxInt64, calc.CodeOK},
		{"div min by one", minStr + " / 1", math.MinInt64, calc.CodeOK},
		{"div min by two", minStr + " / 2", math.MinInt64 / 2, calc.CodeOK},
		{"div min by min", minStr + " / " + minStr, 1, calc.CodeOK},
		{"mod min by max", minStr + " % " + maxStr, -1, calc.CodeOK},
		{"mod max by min", maxStr + " % " + minStr, math.MaxInt64, calc.CodeOK},
		{"mod min by one", minStr + " % 1", 0, calc.CodeOK},
		// Overflow.
		{"add overflow", maxStr + " + 1", 0, calc.CodeOverflow},
		{"add overflow negative", minStr + " + -1", 0, calc.CodeOverflow},
		{"add max max", maxStr + " + " + maxStr, 0, calc.CodeOverflow},
		{"add min min", minStr + " + " + minStr, 0, calc.CodeOverflow},
		{"sub overflow", minStr + " - 1", 0, calc.CodeOverflow},
		{"sub overflow positive", maxStr + " - -1", 0, calc.CodeOverflow},
		{"sub zero minus min", "0 - " + minStr, 0, calc.CodeOverflow},
		{"sub max minus min", maxStr + " - " + minStr, 0, calc.CodeOverflow},
		{"mul overflow", "4611686018427387904 * 2", 0, calc.CodeOverflow},
		{"mul overflow negative", "-4611686018427387905 * 2", 0, calc.CodeOverflow},
		{"mul overflow large", "3037000500 * 3037000500", 0, calc.CodeOverflow},
		{"mul fits below sqrt", "3037000499 * 3037000499", 9223372030926249001, calc.CodeOK},
		{"mul max max", maxStr + " * " + maxStr, 0, calc.CodeOverflow},
		{"mul min by minus one", minStr + " * -1", 0, calc.CodeOverflow},
		{"mul minus one by min", "-1 * " + minStr, 0, calc.CodeOverflow},
		{"mul min min", minStr + " * " + minStr, 0, calc.CodeOverflow},
		{"div min by minus one", minStr + " / -1", 0, calc.CodeOverflow},
		{"mod min by minus one", minStr + " % -1", 0, calc.CodeOverflow},
		// Operand literals out of range.
		{"x literal above max", "9223372036854775808 + 0", 0, calc.CodeOverflow},
		{"x literal below min", "-9223372036854775809 + 0", 0, calc.CodeOverflow},
		{"y literal above max", "0 + 9223372036854775808", 0, calc.CodeOverflow},
		{"y literal below min", "0 - -9223372036854775809", 0, calc.CodeOverflow},
		{"huge literal", strings.Repeat("9", 40) + " * 0", 0, calc.CodeOverflow},
		{"huge literal div by zero", "99999999999999999999 / 0", 0, calc.CodeOverflow},
		{"huge literal mod by zero", "1 % -99999999999999999999", 0, calc.CodeOverflow},
		{"literal 2^64", "18446744073709551616 + 0", 0, calc.CodeOverflow},
		{"literal 2^64+1", "18446744073709551617 + 0", 0, calc.CodeOverflow},
		// Malformed expressions.
		{"unknown operator", "1 ^ 2", 0, calc.CodeMalformed},
		{"operator x", "1 x 2", 0, calc.CodeMalformed},
		{"two-byte operator", "1 ** 2", 0, calc.CodeMalformed},
		{"double space before op", "1  + 2", 0, calc.CodeMalformed},
		{"double space after op", "1 +  2", 0, calc.CodeMalformed},
		{"no spaces", "1+2", 0, calc.CodeMalformed},
		{"no space before op", "1+ 2", 0, calc.CodeMalformed},
		{"no space after op", "1 +2", 0, calc.CodeMalformed},
		{"no space after minus op", "1 -2", 0, calc.CodeMalformed},
		{"tab separator", "1\t+\t2", 0, calc.CodeMalformed},
		{"plus sign x", "+1 + 2", 0, calc.CodeMalformed},
		{"plus sign y", "1 + +2", 0, calc.CodeMalformed},
		{"double minus", "--1 + 2", 0, calc.CodeMalformed},
		{"letters", "a + b", 0, calc.CodeMalformed},
		{"letter in x", "1a + 2", 0, calc.CodeMalformed},
		{"letter in y", "1 + 2a", 0, calc.CodeMalformed},
		{"hex", "0x10 + 1", 0, calc.CodeMalformed},
		{"underscore", "1_000 + 1", 0, calc.CodeMalformed},
		{"decimal point", "1.5 + 1", 0, calc.CodeMalformed},
		{"exponent", "1e3 + 1", 0, calc.CodeMalformed},
		{"empty x", " + 2", 0, calc.CodeMalformed},
		{"empty y", "1 + ", 0, calc.CodeMalformed},
		{"minus only x", "- + 2", 0, calc.CodeMalformed},
		{"minus only y", "1 + -", 0, calc.CodeMalformed},
		{"trailing space", "1 + 2 ", 0, calc.CodeMalformed},
		{"leading space", " 1 + 2", 0, calc.CodeMalformed},
		{"trailing CRLF", "1 + 2\r\n", 0, calc.CodeMalformed},
		{"trailing NUL", "1 + 2\x00", 0, calc.CodeMalformed},
		{"three operands", "1 + 2 + 3", 0, calc.CodeMalformed},
		{"missing operator", "1 2", 0, calc.CodeMalformed},
		{"missing operator and y", "1 +", 0, calc.CodeMalformed},
		{"operand only", "12", 0, calc.CodeMalformed},
		{"operator only", "+", 0, calc.CodeMalformed},
		{"spaces only", "   ", 0, calc.CodeMalformed},
		{"empty", "", 0, calc.CodeMalformed},
		{"unicode digits", "١ + ٢", 0, calc.CodeMalformed},
		{"unicode minus", "−1 + 2", 0, calc.CodeMalformed},
		{"parentheses", "(1) + 2", 0, calc.CodeMalformed},
		{"malformed beats overflow", "99999999999999999999 ^ 1", 0, calc.CodeMalformed},
		{"malformed after overflowing literal", "99999999999999999999x + 1", 0, calc.CodeMalformed},
		{"malformed beats div by zero", "1 / 0 ", 0, calc.CodeMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			result, code := calc.Eval([]byte(tt.payload))
			if result != tt.result || code != tt.code {
				t.Errorf("Eval(%q) = %d, %v; want %d, %v", tt.payload, result, code, tt.result, tt.code)
			}
		})
	}
}

func TestCodeString(t *testing.T) {
	tests := []struct {
		code calc.Code
		want string
	}{
		{calc.CodeOK, "ok"},
		{calc.CodeDivisionByZero, "division by zero"},
		{calc.CodeModuloByZero, "modulo by zero"},
		{calc.CodeMalformed, "malformed expression"},
		{calc.CodeOverflow, "overflow"},
		{calc.Code(9), "Code(9)"},
	}
	for _, tt := range tests {
		if got := tt.code.String(); got != tt.want {
			t.Errorf("Code(%d).String() = %q, want %q", uint8(tt.code), got, tt.want)
		}
	}
}

// resp builds a response frame by hand, independently of AppendResponse.
func resp(result int64, code calc.Code) string {
	body := strconv.FormatInt(result, 10) + " " + strconv.Itoa(int(code))
	return strconv.Itoa(len(body)) + "\r\n" + body + "\r\n"
}

func TestProcess(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		out      string
		consumed int // -1: all of in
		err      bool
	}{
		{name: "empty", in: "", out: "", consumed: 0},
		{name: "one frame", in: "5\r\n1 + 2\r\n", out: "3\r\n3 0\r\n", consumed: -1},
		{name: "div by zero", in: "6\r\n10 / 0\r\n", out: "3\r\n0 1\r\n", consumed: -1},
		{name: "negative result", in: "6\r\n-7 / 2\r\n", out: "4\r\n-3 0\r\n", consumed: -1},
		{name: "min result", in: "25\r\n" + minStr + " + -0\r\n", out: resp(math.MinInt64, calc.CodeOK), consumed: -1},
		{name: "min div minus one", in: "25\r\n" + minStr + " / -1\r\n", out: "3\r\n0 4\r\n", consumed: -1},
		{
			name:     "many frames",
			in:       "5\r\n1 + 2\r\n6\r\n10 / 0\r\n6\r\n-7 % 2\r\n5\r\n1 ^ 2\r\n6\r\n6 * -7\r\n",
			out:      "3\r\n3 0\r\n3\r\n0 1\r\n4\r\n-1 0\r\n3\r\n0 3\r\n5\r\n-42 0\r\n",
			consumed: -1,
		},
		{name: "malformed payload answered", in: "6\r\n1  + 2\r\n", out: "3\r\n0 3\r\n", consumed: -1},
		{name: "payload with CRLF inside", in: "6\r\n1\r\n+ 2\r\n", out: "3\r\n0 3\r\n", consumed: -1},
		{name: "one-byte payload", in: "1\r\nx\r\n", out: "3\r\n0 3\r\n", consumed: -1},
		{name: "leading zeros in LEN", in: "0005\r\n1 + 2\r\n", out: "3\r\n3 0\r\n", consumed: -1},
		{name: "max payload", in: "4096\r\n" + strings.Repeat("0", 4091) + "1 + 2\r\n", out: "3\r\n3 0\r\n", consumed: -1},
		{name: "max payload malformed", in: "4096\r\n" + strings.Repeat(" ", 4096) + "\r\n", out: "3\r\n0 3\r\n", consumed: -1},
		// Incomplete frames: consumed stops at the frame's start.
		{name: "header digits only", in: "5", out: "", consumed: 0},
		{name: "header CR only", in: "5\r", out: "", consumed: 0},
		{name: "header only", in: "5\r\n", out: "", consumed: 0},
		{name: "partial payload", in: "5\r\n1 +", out: "", consumed: 0},
		{name: "payload without CR", in: "5\r\n1 + 2", out: "", consumed: 0},
		{name: "payload without LF", in: "5\r\n1 + 2\r", out: "", consumed: 0},
		{name: "good then partial", in: "5\r\n1 + 2\r\n6\r\n10 /", out: "3\r\n3 0\r\n", consumed: 10},
		{name: "four digits pending", in: "4096", out: "", consumed: 0},
		// Framing errors.
		{name: "not digits", in: "x\r\n1 + 2\r\n", err: true},
		{name: "digit then letter", in: "5x\r\n1 + 2\r\n", err: true},
		{name: "negative LEN", in: "-5\r\n1 + 2\r\n", err: true},
		{name: "plus LEN", in: "+5\r\n1 + 2\r\n", err: true},
		{name: "space before LEN", in: " 5\r\n1 + 2\r\n", err: true},
		{name: "space after LEN", in: "5 \r\n1 + 2\r\n", err: true},
		{name: "empty LEN", in: "\r\n1 + 2\r\n", err: true},
		{name: "zero", in: "0\r\n\r\n", err: true},
		{name: "zero padded", in: "0000\r\n", err: true},
		{name: "4097", in: "4097\r\n", err: true},
		{name: "4097 without CRLF", in: "4097", err: true},
		{name: "9999 without CRLF", in: "9999", err: true},
		{name: "five digits", in: "00005\r\n1 + 2\r\n", err: true},
		{name: "five digits without CRLF", in: "12345", err: true},
		{name: "LF only after LEN", in: "5\n1 + 2\r\n", err: true},
		{name: "CR without LF after LEN", in: "5\r1 + 2\r\n", err: true},
		{name: "CR CR after LEN", in: "5\r\r\n1 + 2\r\n", err: true},
		{name: "missing CRLF after payload", in: "5\r\n1 + 2xx", err: true},
		{name: "LF only after payload", in: "5\r\n1 + 2\n", err: true},
		{name: "CR without LF after payload", in: "5\r\n1 + 2\rx", err: true},
		{name: "LEN too short", in: "4\r\n1 + 2\r\n", err: true},
		{name: "LEN too long", in: "6\r\n1 + 2\r\n", err: true},
		// The example "7\r\n10 / 0\r\n" declares 7 bytes for the
		// 6-byte "10 / 0": the 7 bytes end in CR and are followed by LF,
		// not CRLF.
		{name: "issue example with LEN 7", in: "7\r\n10 / 0\r\n", err: true},
		// Good frames before a bad one are answered.
		{name: "good then not digits", in: "5\r\n1 + 2\r\nx\r\n", out: "3\r\n3 0\r\n", consumed: 10, err: true},
		{
			name:     "two good then bad payload CRLF",
			in:       "5\r\n1 + 2\r\n6\r\n10 / 0\r\n2\r\n1 + 2\r\n",
			out:      "3\r\n3 0\r\n3\r\n0 1\r\n",
			consumed: 21,
			err:      true,
		},
		{name: "good then 4097", in: "5\r\n1 + 2\r\n4097\r\n", out: "3\r\n3 0\r\n", consumed: 10, err: true},
		{name: "good then LF", in: "5\r\n1 + 2\r\n\n", out: "3\r\n3 0\r\n", consumed: 10, err: true},
		{name: "bad then good", in: "x\r\n5\r\n1 + 2\r\n", out: "", consumed: 0, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.consumed
			if want < 0 {
				want = len(tt.in)
			}
			prefix := []byte("prefix")
			consumed, out, err := calc.Process([]byte(tt.in), prefix)
			if got := string(out); got != "prefix"+tt.out {
				t.Errorf("out = %q, want %q", got, "prefix"+tt.out)
			}
			if consumed != want {
				t.Errorf("consumed = %d, want %d", consumed, want)
			}
			if tt.err {
				if !errors.Is(err, calc.ErrBadFrame) {
					t.Errorf("err = %v, want one wrapping ErrBadFrame", err)
				}
			} else if err != nil {
				t.Errorf("err = %v, want nil", err)
			}
			// Fed a byte at a time, like a loop holding the unconsumed rest.
			gotOut, gotConsumed, gotErr := feed([]byte(tt.in), 1)
			if !bytes.Equal(gotOut, out[len(prefix):]) || gotConsumed != consumed || gotErr != err {
				t.Errorf("byte at a time: out %q, consumed %d, err %v; want %q, %d, %v",
					gotOut, gotConsumed, gotErr, out[len(prefix):], consumed, err)
			}
		})
	}
}

// feed passes in to Process in chunks of size bytes, keeping the unconsumed
// rest as a loop does, and returns the output, the total consumed and the
// error that stopped it.
func feed(in []byte, size int) (out []byte, consumed int, err error) {
	var pending []byte
	for off := 0; off < len(in); off += size {
		pending = append(pending, in[off:min(off+size, len(in))]...)
		var n int
		n, out, err = calc.Process(pending, out)
		consumed += n
		if err != nil {
			return out, consumed, err
		}
		pending = append(pending[:0], pending[n:]...)
	}
	return out, consumed, nil
}

// TestProcessSplits feeds a stream of frames split at every point, and in
// chunks of every size, and checks the output is that of the whole stream.
func TestProcessSplits(t *testing.T) {
	var stream []byte
	stream = calc.AppendRequest(stream, 1, '+', 2)
	stream = calc.AppendRequest(stream, math.MinInt64, '/', -1)
	stream = calc.AppendRequest(stream, -7, '%', 2)
	stream = calc.AppendRawRequest(stream, []byte("1 ^ 2"))
	stream = calc.AppendRequest(stream, 123456789, '*', -987654321)
	stream = calc.AppendRawRequest(stream, []byte(strings.Repeat("1", 30)+" - 1"))
	stream = calc.AppendRequest(stream, 10, '/', 0)
	want := resp(3, 0) + resp(0, calc.CodeOverflow) + resp(-1, 0) + resp(0, calc.CodeMalformed) +
		resp(123456789*-987654321, 0) + resp(0, calc.CodeOverflow) + resp(0, calc.CodeDivisionByZero)

	for _, tail := range []string{"", "12345"} { // with and without a bad frame at the end
		t.Run("tail="+strconv.Quote(tail), func(t *testing.T) {
			in := append(stream[:len(stream):len(stream)], tail...)
			for k := 0; k <= len(in); k++ {
				n1, out, err := calc.Process(in[:k], nil)
				if err != nil {
					if k < len(stream) {
						t.Fatalf("split %d: first part: err %v", k, err)
					}
					continue
				}
				rest := in[n1:]
				n2, out, err := calc.Process(rest, out)
				if got := string(out); got != want {
					t.Fatalf("split %d: out %q, want %q", k, got, want)
				}
				if got := n1 + n2; got != len(stream) {
					t.Fatalf("split %d: consumed %d, want %d", k, got, len(stream))
				}
				if (err != nil) != (tail != "") {
					t.Fatalf("split %d: err %v", k, err)
				}
			}
			for size := 1; size <= len(in); size++ {
				out, consumed, err := feed(in, size)
				if string(out) != want || consumed != len(stream) || (err != nil) != (tail != "") {
					t.Fatalf("chunks of %d: out %q, consumed %d, err %v; want %q, %d", size, out, consumed, err, want, len(stream))
				}
			}
		})
	}
}

func TestDocExamples(t *testing.T) {
	tests := []struct{ in, out string }{
		{"5\r\n1 + 2\r\n", "3\r\n3 0\r\n"},
		{"6\r\n10 / 0\r\n", "3\r\n0 1\r\n"},
		{"6\r\n-7 / 2\r\n", "4\r\n-3 0\r\n"},
		{"6\r\n-7 % 2\r\n", "4\r\n-1 0\r\n"},
		{"6\r\n7 % -2\r\n", "3\r\n1 0\r\n"},
		{"5\r\n1 ^ 2\r\n", "3\r\n0 3\r\n"},
		{"6\r\n1  + 2\r\n", "3\r\n0 3\r\n"},
		{"25\r\n-9223372036854775808 / -1\r\n", "3\r\n0 4\r\n"},
		{"5\r\n1 + 2\r\n2\r\n1 + 2\r\n", "3\r\n3 0\r\n"},
		{"5\r\n1 + 2\r\n0005\r\n1 + 2\r\n", "3\r\n3 0\r\n3\r\n3 0\r\n"},
	}
	for _, tt := range tests {
		_, out, _ := calc.Process([]byte(tt.in), nil)
		if got := string(out); got != tt.out {
			t.Errorf("Process(%q) out %q, want %q", tt.in, got, tt.out)
		}
	}
}

func TestErrorsWrapBadFrame(t *testing.T) {
	for _, in := range []string{"x", "\r", "12345", "4097", "0\r\n", "5\n", "5\rx", "1\r\nxx"} {
		_, _, err := calc.Process([]byte(in), nil)
		if !errors.Is(err, calc.ErrBadFrame) {
			t.Errorf("Process(%q): err %v, want one wrapping ErrBadFrame", in, err)
			continue
		}
		if err == calc.ErrBadFrame || !strings.HasPrefix(err.Error(), calc.ErrBadFrame.Error()+": ") {
			t.Errorf("Process(%q): err %q, want ErrBadFrame with a detail", in, err)
		}
	}
}

func TestAppendRequest(t *testing.T) {
	tests := []struct {
		x, y int64
		op   byte
		want string
	}{
		{1, 2, '+', "5\r\n1 + 2\r\n"},
		{10, 0, '/', "6\r\n10 / 0\r\n"},
		{-7, -2, '%', "7\r\n-7 % -2\r\n"},
		{math.MinInt64, math.MaxInt64, '*', "42\r\n" + minStr + " * " + maxStr + "\r\n"},
		{1, 2, '^', "5\r\n1 ^ 2\r\n"},
	}
	for _, tt := range tests {
		if got := string(calc.AppendRequest([]byte("p"), tt.x, tt.op, tt.y)); got != "p"+tt.want {
			t.Errorf("AppendRequest(%d %c %d) = %q, want %q", tt.x, tt.op, tt.y, got, "p"+tt.want)
		}
	}
	if got, want := string(calc.AppendRawRequest(nil, []byte("1  + 2"))), "6\r\n1  + 2\r\n"; got != want {
		t.Errorf("AppendRawRequest = %q, want %q", got, want)
	}
}

func TestAppendResponse(t *testing.T) {
	tests := []struct {
		result int64
		code   calc.Code
		want   string
	}{
		{3, calc.CodeOK, "3\r\n3 0\r\n"},
		{-42, calc.CodeOK, "5\r\n-42 0\r\n"},
		{math.MinInt64, calc.CodeOK, "22\r\n" + minStr + " 0\r\n"},
		{math.MaxInt64, calc.CodeOK, "21\r\n" + maxStr + " 0\r\n"},
		{0, calc.CodeDivisionByZero, "3\r\n0 1\r\n"},
		{77, calc.CodeOverflow, "3\r\n0 4\r\n"}, // result forced to 0
		{0, calc.Code(12), "4\r\n0 12\r\n"},
	}
	for _, tt := range tests {
		if got := string(calc.AppendResponse(nil, tt.result, tt.code)); got != tt.want {
			t.Errorf("AppendResponse(%d, %d) = %q, want %q", tt.result, uint8(tt.code), got, tt.want)
		}
	}
}

func TestProcessAllocs(t *testing.T) {
	var in []byte
	for i := range 16 {
		in = calc.AppendRequest(in, int64(i)*1234567, "+-*/%"[i%5], int64(i)-7)
	}
	in = calc.AppendRawRequest(in, []byte("1 ^ 2"))
	in = append(in, "5\r\n1 +"...) // an incomplete frame at the end
	out := make([]byte, 0, 1024)
	allocs := testing.AllocsPerRun(100, func() {
		_, out, _ = calc.Process(in, out[:0])
	})
	if allocs != 0 {
		t.Errorf("Process: %v allocs per run, want 0", allocs)
	}
	bad := append(in[:len(in):len(in)], "\r\n12345"...)
	allocs = testing.AllocsPerRun(100, func() {
		_, out, _ = calc.Process(bad, out[:0])
	})
	if allocs != 0 {
		t.Errorf("Process with a framing error: %v allocs per run, want 0", allocs)
	}
	payload := []byte(minStr + " * -1")
	allocs = testing.AllocsPerRun(100, func() { calc.Eval(payload) })
	if allocs != 0 {
		t.Errorf("Eval: %v allocs per run, want 0", allocs)
	}
}
