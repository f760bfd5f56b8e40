package main

import "testing"

func TestMedian(t *testing.T) {
	tests := []struct {
		name   string
		in     []float64
		want   float64
		wantOK bool
	}{
		{"none", nil, 0, false},
		{"one", []float64{7}, 7, true},
		{"odd count, unsorted", []float64{5, 1, 3}, 3, true},
		{"odd count, duplicates", []float64{2, 2, 9, 1, 2}, 2, true},
		{"even count: mean of the middle two", []float64{4, 1, 3, 2}, 2.5, true},
		{"two", []float64{127612, 127613}, 127612.5, true},
		{"negative and fractional", []float64{-1.5, 0.5}, -0.5, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]float64(nil), tt.in...)
			got, ok := median(tt.in)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("got %v, %v, want %v, %v", got, ok, tt.want, tt.wantOK)
			}
			for i := range in {
				if in[i] != tt.in[i] {
					t.Fatalf("median reordered its input: got %v, want %v", tt.in, in)
				}
			}
		})
	}
}

func TestMinMax(t *testing.T) {
	tests := []struct {
		name           string
		in             []float64
		wantLo, wantHi float64
		wantOK         bool
	}{
		{"none", nil, 0, 0, false},
		{"one", []float64{3}, 3, 3, true},
		{"several", []float64{3, 10, 1.5, 7}, 1.5, 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, hi, ok := minMax(tt.in)
			if lo != tt.wantLo || hi != tt.wantHi || ok != tt.wantOK {
				t.Errorf("got %v, %v, %v, want %v, %v, %v", lo, hi, ok, tt.wantLo, tt.wantHi, tt.wantOK)
			}
		})
	}
}

func TestSI(t *testing.T) {
	tests := []struct {
		name string
		in   opt
		want string
	}{
		{"missing", opt{}, "n/a"},
		{"zero", some(0), "0"},
		{"under 1000 truncates", some(999.7), "999"},
		{"thousands", some(127612), "127.6k"},
		{"just 1000", some(1000), "1.0k"},
		{"millions", some(1460000), "1.46M"},
		{"rounds up into the next digit", some(999999), "1000.0k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := si(tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRatio(t *testing.T) {
	tests := []struct {
		name string
		a, b opt
		want string
	}{
		{"plain", some(150), some(100), "1.50×"},
		{"smaller", some(1), some(3), "0.33×"},
		{"itself", some(42), some(42), "1.00×"},
		{"n/a: zero divisor", some(5), some(0), "n/a"},
		{"n/a: divisor missing (no such server in the run)", some(5), opt{}, "n/a"},
		{"n/a: dividend missing", opt{}, some(5), "n/a"},
		{"n/a: both missing", opt{}, opt{}, "n/a"},
		{"zero dividend", some(0), some(5), "0.00×"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ratio(tt.a, tt.b); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestUs(t *testing.T) {
	tests := []struct {
		name string
		in   opt
		want string
	}{
		{"missing", opt{}, "n/a"},
		{"zero", some(0), "0 µs"},
		{"µs rounds", some(87.5), "88 µs"},
		{"just under 1 ms", some(999), "999 µs"},
		{"1 ms", some(1000), "1.00 ms"},
		{"ms", some(1234), "1.23 ms"},
		{"seconds stay in ms", some(1.5e6), "1500.00 ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := us(tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
