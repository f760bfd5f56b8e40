package wire

import (
	"bytes"
	"strings"
	"testing"
)

func TestHandoffMessages(t *testing.T) {
	for _, tc := range []struct {
		name  string
		msg   string
		kinds string // "" not an FDS message
	}{
		{"one tcp", "FDS t", "t"},
		{"mixed", "FDS ttut", "ttut"},
		{"most", "FDS " + strings.Repeat("t", MaxHandoffFDs), strings.Repeat("t", MaxHandoffFDs)},
		{"one too many", "FDS " + strings.Repeat("t", MaxHandoffFDs+1), ""},
		{"no kinds", "FDS ", ""},
		{"bare", "FDS", ""},
		{"unknown kind", "FDS tx", ""},
		{"space in kinds", "FDS t t", ""},
		{"other message", "READY", ""},
		{"prefix only", "FDSt", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kinds, ok := ParseHandoffFDs([]byte(tc.msg))
			if string(kinds) != tc.kinds || ok != (tc.kinds != "") {
				t.Errorf("ParseHandoffFDs(%q): got %q, %v; want %q, %v", tc.msg, kinds, ok, tc.kinds, tc.kinds != "")
			}
		})
	}
	if kinds, ok := ParseHandoffFDs(HandoffFDs(nil, []byte("tu"))); string(kinds) != "tu" || !ok {
		t.Errorf("FDS round trip: got %q, %v", kinds, ok)
	}
	for _, tc := range []struct {
		msg  string
		want bool
	}{{"FDS", true}, {"FDS x", true}, {"FDS t", true}, {"FDSX", false}, {"GONE 1", false}} {
		if got := IsHandoffFDs([]byte(tc.msg)); got != tc.want {
			t.Errorf("IsHandoffFDs(%q): got %v, want %v", tc.msg, got, tc.want)
		}
	}
}

func TestGoneMessages(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  string
		n    uint64
		ok   bool
	}{
		{"zero", "GONE 0", 0, true},
		{"some", "GONE 1234", 1234, true},
		{"max", "GONE 18446744073709551615", 1<<64 - 1, true},
		{"overflow", "GONE 18446744073709551616", 0, false},
		{"signed", "GONE +1", 0, false},
		{"negative", "GONE -1", 0, false},
		{"empty", "GONE ", 0, false},
		{"bare", "GONE", 0, false},
		{"heartbeat", "HB 3", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, ok := ParseGone([]byte(tc.msg))
			if n != tc.n || ok != tc.ok {
				t.Errorf("ParseGone(%q): got %d, %v; want %d, %v", tc.msg, n, ok, tc.n, tc.ok)
			}
		})
	}
	if n, ok := ParseGone(Gone(77)); n != 77 || !ok {
		t.Errorf("GONE round trip: got %d, %v", n, ok)
	}
}

// FuzzHandoffParsers: whatever a peer sends, the parsers do not panic, accept
// only what the encoders could have produced, and what they accept encodes
// back to the same bytes.
func FuzzHandoffParsers(f *testing.F) {
	for _, s := range []string{"FDS t", "FDS tutu", "FDS ", "FDS", "GONE 0", "GONE 99", "GONE -1", "HB 1", "",
		"FDS " + strings.Repeat("u", MaxHandoffFDs+1)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		if kinds, ok := ParseHandoffFDs(msg); ok {
			if len(kinds) == 0 || len(kinds) > MaxHandoffFDs {
				t.Fatalf("ParseHandoffFDs(%q): accepted %d kinds", msg, len(kinds))
			}
			if !IsHandoffFDs(msg) {
				t.Fatalf("ParseHandoffFDs(%q) accepted what IsHandoffFDs does not recognise", msg)
			}
			if again := HandoffFDs(nil, kinds); !bytes.Equal(again, msg) {
				t.Fatalf("FDS %q re-encodes as %q", msg, again)
			}
		}
		if n, ok := ParseGone(msg); ok {
			if again := Gone(n); !bytes.Equal(again, msg) && !bytes.HasPrefix(msg, []byte("GONE 0")) {
				t.Fatalf("GONE %q re-encodes as %q", msg, again)
			}
			if _, isFDs := ParseHandoffFDs(msg); isFDs {
				t.Fatalf("%q parses as both GONE and FDS", msg)
			}
		}
	})
}
