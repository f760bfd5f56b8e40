package calc_test

import (
	"testing"

	"github.com/prefork/prefork/proto/calc"
)

func BenchmarkProcess(b *testing.B) {
	one := calc.AppendRequest(nil, 123456, '*', -789)
	var sixteen []byte
	for i := range 16 {
		sixteen = calc.AppendRequest(sixteen, int64(i)*1000003, "+-*/%"[i%5], int64(i)+1)
	}
	for _, bm := range []struct {
		name string
		in   []byte
	}{{"1frame", one}, {"16frames", sixteen}} {
		b.Run(bm.name, func(b *testing.B) {
			out := make([]byte, 0, 4096)
			b.ReportAllocs()
			b.SetBytes(int64(len(bm.in)))
			for b.Loop() {
				n, o, err := calc.Process(bm.in, out[:0])
				if err != nil || n != len(bm.in) {
					b.Fatalf("consumed %d of %d, err %v", n, len(bm.in), err)
				}
				out = o
			}
		})
	}
}

func BenchmarkEval(b *testing.B) {
	for _, bm := range []struct{ name, payload string }{
		{"add", "1 + 2"},
		{"mul", "-3037000499 * 3037000499"},
		{"mod-min", "-9223372036854775808 % -1"},
		{"malformed", "1 ^ 2"},
	} {
		b.Run(bm.name, func(b *testing.B) {
			p := []byte(bm.payload)
			b.ReportAllocs()
			b.SetBytes(int64(len(p)))
			for b.Loop() { // b.Loop keeps the call and its results alive
				calc.Eval(p)
			}
		})
	}
}
