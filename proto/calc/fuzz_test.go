package calc_test

import (
	"bytes"
	"math"
	"testing"

	"github.com/prefork/prefork/proto/calc"
)

func FuzzEval(f *testing.F) {
	for _, s := range []string{
		"1 + 2", "10 / 0", "10 % 0", "-7 % 2", "7 / -2", "1 ^ 2", "1  + 2", "+1 + 2",
		"a + b", " + 2", "1 + 2 ", "-9223372036854775808 / -1", "-9223372036854775808 % -1",
		"9223372036854775807 + 1", "-9223372036854775808 - 1", "3037000500 * 3037000500",
		"9223372036854775808 + 0", "0000000000000000000000009 * -0", "-", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		result, code := calc.Eval(payload)
		wantResult, wantCode := refEval(string(payload))
		if result != wantResult || code != wantCode {
			t.Fatalf("Eval(%q) = %d, %v; want %d, %v", payload, result, code, wantResult, wantCode)
		}
	})
}

// FuzzEvalInts drives the arithmetic with well-formed payloads, which random
// bytes rarely produce.
func FuzzEvalInts(f *testing.F) {
	f.Add(int64(1), byte('+'), int64(2))
	f.Add(int64(math.MinInt64), byte('/'), int64(-1))
	f.Add(int64(math.MinInt64), byte('%'), int64(-1))
	f.Add(int64(math.MaxInt64), byte('*'), int64(2))
	f.Add(int64(-7), byte('%'), int64(0))
	f.Add(int64(3037000500), byte('*'), int64(-3037000500))
	f.Fuzz(func(t *testing.T, x int64, op byte, y int64) {
		frame := calc.AppendRequest(nil, x, op, y)
		payload := frame[bytes.IndexByte(frame, '\n')+1 : len(frame)-2]
		result, code := calc.Eval(payload)
		wantResult, wantCode := refEval(string(payload))
		if result != wantResult || code != wantCode {
			t.Fatalf("Eval(%q) = %d, %v; want %d, %v", payload, result, code, wantResult, wantCode)
		}
	})
}

func FuzzProcess(f *testing.F) {
	f.Add([]byte("5\r\n1 + 2\r\n"), uint(4))
	f.Add([]byte("5\r\n1 + 2\r\n6\r\n10 / 0\r\n5\r\n1 ^ 2\r\n"), uint(13))
	f.Add([]byte("5\r\n1 + 2\r\nx\r\n"), uint(11))
	f.Add([]byte("4097\r\n"), uint(2))
	f.Add([]byte("12345\r\n"), uint(3))
	f.Add([]byte("5\n1 + 2\r\n"), uint(1))
	f.Add([]byte("5\r\n1 + 2\n"), uint(9))
	f.Add([]byte("0005\r\n1 + 2\r\n2\r\n1 + 2\r\n"), uint(20))
	f.Fuzz(func(t *testing.T, data []byte, split uint) {
		n, out, err := calc.Process(data, nil)
		if n < 0 || n > len(data) {
			t.Fatalf("consumed %d of %d bytes", n, len(data))
		}

		// The same bytes in two pieces, the rest kept as a loop keeps it.
		k := int(split % uint(len(data)+1))
		n1, out2, err2 := calc.Process(data[:k], nil)
		n2 := 0
		if err2 == nil {
			n2, out2, err2 = calc.Process(data[n1:], out2)
		}
		if !bytes.Equal(out2, out) || n1+n2 != n || err2 != err {
			t.Fatalf("split at %d: out %q, consumed %d, err %v; whole: out %q, consumed %d, err %v",
				k, out2, n1+n2, err2, out, n, err)
		}

		// A byte at a time.
		if len(data) <= 256 {
			out3, n3, err3 := feed(data, 1)
			if !bytes.Equal(out3, out) || n3 != n || err3 != err {
				t.Fatalf("byte at a time: out %q, consumed %d, err %v; whole: out %q, consumed %d, err %v",
					out3, n3, err3, out, n, err)
			}
		}

		// The reference agrees on the frames consumed ...
		refOut, refN, status := refProcess(string(data[:n]))
		if status != refDone || refN != n || refOut != string(out) {
			t.Fatalf("reference on the consumed %q: out %q, consumed %d, status %d; got out %q",
				data[:n], refOut, refN, status, out)
		}
		// ... and on what is left: no complete frame, and an error whenever
		// the reference sees one (Process may see errors sooner).
		_, refN, status = refProcess(string(data[n:]))
		if refN != 0 || status == refDone && n < len(data) || status == refBad && err == nil {
			t.Fatalf("reference on the rest %q: consumed %d, status %d; got err %v", data[n:], refN, status, err)
		}
	})
}
