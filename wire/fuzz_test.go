package wire

import (
	"bytes"
	"log/slog"
	"math/big"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
)

// refHeartbeatCount is the reference reading of one count of a heartbeat: a
// decimal (an optional sign, digits, nothing else) that is not negative and
// is at most limit; -1 (unknown) for anything else.
var refCount = regexp.MustCompile(`^[+-]?[0-9]+$`)

func refHeartbeatCount(text []byte, limit int64) int64 {
	if !refCount.Match(text) {
		return -1
	}
	v, ok := new(big.Int).SetString(strings.TrimPrefix(string(text), "+"), 10)
	if !ok || v.Sign() < 0 || !v.IsInt64() || v.Int64() > limit {
		return -1
	}
	return v.Int64()
}

// refHeartbeat is the reference reading of the text after "HB ": the
// connection count up to the first space, the request count after it (-1
// without one: the "HB <conns>" of an older worker).
func refHeartbeat(rest []byte) (conns int, requests int64) {
	c, r, two := bytes.Cut(rest, []byte(" "))
	requests = -1
	if two {
		requests = refHeartbeatCount(r, 1<<63-1)
	}
	return int(refHeartbeatCount(c, int64(int(^uint(0)>>1)))), requests
}

// FuzzControlMessage feeds any datagram to every control-message parser, as
// the master's readControl and onControl and the worker's control handler
// receive them, and checks each against the grammar in control.go: a parser
// accepts exactly its own messages, what it accepts re-encodes to the same
// bytes, and no datagram is taken for two kinds of message.
func FuzzControlMessage(f *testing.F) {
	for _, s := range []string{
		"READY", "HB", "HB 0", "HB 12", "HB -3", "HB +7", "HB 99999999999999999999", "HB x", "HB  1", "HB 1 ",
		"HB 1 2", "HB 0 0", "HB 3 18446744073709551615", "HB 3 9223372036854775807", "HB 1 -2", "HB 1 2 3",
		"HB x 5", "HB 1  2", "HB 7 +8", "HB  ",
		"HBX 1", "hb 1", "STOP", "QUIT", "RETIRE", "METRICS", "METRICS ", "METRICS 42", "METRICS 42\n",
		"METRICS 7\n\x00\x01body\nmore", "METRICS\n", "METRICS 1\r\n", " METRICS 1", "METRICS 1 \n", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		kinds := 0

		conns, requests, hb := ParseHeartbeat(msg)
		rest, wantHB := bytes.CutPrefix(msg, []byte("HB "))
		wantHB = wantHB || string(msg) == "HB"
		if hb != wantHB {
			t.Fatalf("ParseHeartbeat(%q): got ok %v, want %v", msg, hb, wantHB)
		}
		if hb {
			kinds++
			wantConns, wantRequests := -1, int64(-1)
			if string(msg) != "HB" {
				wantConns, wantRequests = refHeartbeat(rest)
			}
			if conns != wantConns || requests != wantRequests {
				t.Fatalf("ParseHeartbeat(%q): got %d connections, %d requests; want %d, %d",
					msg, conns, requests, wantConns, wantRequests)
			}
			if conns >= 0 && requests >= 0 {
				if bc, br, ok := ParseHeartbeat(Heartbeat(conns, uint64(requests))); !ok || bc != conns || br != requests {
					t.Fatalf("Heartbeat(%d, %d) read back: got %d, %d, %v", conns, requests, bc, br, ok)
				}
			}
		} else if conns != 0 || requests != 0 {
			t.Fatalf("ParseHeartbeat(%q): got %d connections, %d requests with ok false, want 0, 0", msg, conns, requests)
		}

		body, isMetrics := bytes.CutPrefix(msg, []byte("METRICS "))
		hasLF := bytes.IndexByte(body, '\n') >= 0

		id, req := ParseMetricsRequest(msg)
		if want := isMetrics && !hasLF; req != want {
			t.Fatalf("ParseMetricsRequest(%q): got ok %v, want %v", msg, req, want)
		}
		if req {
			kinds++
			if got := MetricsRequest(id); !bytes.Equal(got, msg) {
				t.Fatalf("ParseMetricsRequest(%q) gave id %q, which encodes as %q", msg, id, got)
			}
		}

		rid, rbody, reply := ParseMetricsReply(msg)
		if want := isMetrics && hasLF; reply != want {
			t.Fatalf("ParseMetricsReply(%q): got ok %v, want %v", msg, reply, want)
		}
		if reply {
			kinds++
			if strings.Contains(rid, "\n") {
				t.Fatalf("ParseMetricsReply(%q): got id %q with a newline", msg, rid)
			}
			if got := MetricsReply(rid, rbody); !bytes.Equal(got, msg) {
				t.Fatalf("ParseMetricsReply(%q) gave %q, %q, which encodes as %q", msg, rid, rbody, got)
			}
			if len(rbody) > 0 && &rbody[len(rbody)-1] != &msg[len(msg)-1] {
				t.Fatalf("ParseMetricsReply(%q): the body does not alias the message", msg)
			}
		}

		switch string(msg) {
		case MsgReady, MsgStop, MsgQuit, MsgRetire:
			kinds++
		}
		if kinds > 1 {
			t.Fatalf("%q is read as %d kinds of control message, want at most one", msg, kinds)
		}

		// The worker trims the datagram before it reads a request: what it
		// takes for METRICS <id> answers with an id the master recognises.
		if wid, ok := ParseMetricsRequest(bytes.TrimSpace(msg)); ok {
			if back, _, ok := ParseMetricsReply(MetricsReply(wid, nil)); !ok || back != wid {
				t.Fatalf("worker read id %q from %q; its answer reads back as %q, %v", wid, msg, back, ok)
			}
		}
	})
}

// FuzzControlRoundTrip encodes control messages from arbitrary values and
// reads them back: every value an encoder can carry comes back as it was.
func FuzzControlRoundTrip(f *testing.F) {
	f.Add(0, uint64(0), "1", []byte("body"))
	f.Add(12, uint64(1<<63), "18446744073709551615", []byte("\x00\n\nMETRICS 1\n"))
	f.Add(-1, uint64(7), "", []byte(nil))
	f.Add(int(^uint(0)>>1), uint64(1<<63-1), "id with spaces", []byte("\xff"))
	f.Fuzz(func(t *testing.T, conns int, requests uint64, id string, body []byte) {
		gotConns, gotRequests, ok := ParseHeartbeat(Heartbeat(conns, requests))
		wantConns := conns
		if conns < 0 {
			wantConns = -1 // a negative count is no count
		}
		wantRequests := int64(requests)
		if requests > 1<<63-1 {
			wantRequests = -1 // past int64: unknown (no worker serves that many)
		}
		if !ok || gotConns != wantConns || gotRequests != wantRequests {
			t.Fatalf("Heartbeat(%d, %d): read back %d, %d, %v; want %d, %d, true",
				conns, requests, gotConns, gotRequests, ok, wantConns, wantRequests)
		}
		if strings.Contains(id, "\n") {
			// The master's ids are decimal numbers; an id with a newline
			// cannot be framed (the request parser refuses it).
			if _, ok := ParseMetricsRequest(MetricsRequest(id)); ok {
				t.Fatalf("MetricsRequest(%q) read back although the id has a newline", id)
			}
			return
		}
		if gotID, ok := ParseMetricsRequest(MetricsRequest(id)); !ok || gotID != id {
			t.Fatalf("MetricsRequest(%q): read back %q, %v", id, gotID, ok)
		}
		gotID, gotBody, ok := ParseMetricsReply(MetricsReply(id, body))
		if !ok || gotID != id || !bytes.Equal(gotBody, body) {
			t.Fatalf("MetricsReply(%q, %q): read back %q, %q, %v", id, body, gotID, gotBody, ok)
		}
		if _, _, isHB := ParseHeartbeat(MetricsReply(id, body)); isHB {
			t.Fatalf("MetricsReply(%q, %q) reads as a heartbeat", id, body)
		}
	})
}

// FuzzSpecEnv sends a Spec built from arbitrary values through the
// environment as the master does (Env) and reads it as the worker does
// (ReadSpec): the worker must see what the master decided, byte for byte.
func FuzzSpecEnv(f *testing.F) {
	f.Add("http", "/srv/www", "public, max-age=60", "/var/log/x.log", "greeting", "hi", "127.0.0.1:80",
		2, 7, int64(time.Second), int64(75*time.Second), int64(1<<20), 3, 4, true)
	f.Add("", "", "", "-", "", "", "[::1]:0", 0, 0, int64(0), int64(-1), int64(-5), -1, -8, false)
	f.Add("calc", "/srv/\u00e9t\u00e9", "no-store", "", "k", "v\x00\n\"\\", "", 1<<30, -1, int64(-1), int64(1), int64(0), 0, 1, true)
	f.Fuzz(func(t *testing.T, proto, root, cacheControl, accessLog, flagName, flagValue, addr string,
		slot, gen int, heartbeat, idle, maxBody int64, cpu, level int, on bool) {
		in := Spec{
			Settings: Settings{
				Proto: proto, IdleTimeout: time.Duration(idle), GracefulTimeout: time.Duration(heartbeat / 3),
				Log:     Log{Format: LogFormat(proto), Level: slog.Level(level)},
				MaxBody: maxBody, MaxInflight: gen, AccessLog: accessLog,
				Root: root, CacheControl: cacheControl, FollowSymlinks: on, Autoindex: !on,
			},
			Slot: slot, Generation: gen, Exclusive: on, Heartbeat: time.Duration(heartbeat),
			AccessLogFD: on, RootFD: !on,
		}
		if flagName != "" || flagValue != "" {
			in.Flags = map[string]string{flagName: flagValue}
		}
		if addr != "" {
			in.Listeners = []Listener{{Addr: addr}, {Addr: root}}
		}
		if cpu >= 0 {
			in.CPU = &cpu
		}
		kv, err := in.Env()
		if err != nil {
			// Only a string that the environment or the worker could not
			// carry intact may be refused, and the error must say so.
			if !strings.Contains(err.Error(), "UTF-8") {
				t.Fatalf("Env of %+v: %v", in, err)
			}
			return
		}
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name != SpecEnv {
			t.Fatalf("Env: got %q, want %s=...", kv, SpecEnv)
		}
		if strings.IndexByte(value, 0) >= 0 {
			t.Fatalf("Env: the value holds a NUL byte, which no environment can carry: %q", value)
		}
		t.Setenv(SpecEnv, value)
		out, err := ReadSpec()
		if err != nil {
			t.Fatalf("ReadSpec of %q: %v", value, err)
		}
		if !reflect.DeepEqual(out, in) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", out, in)
		}
	})
}

// FuzzReadSpec gives the worker an arbitrary environment value: ReadSpec
// refuses it or returns a Spec that survives its own round trip unchanged,
// and in both cases removes the variable.
func FuzzReadSpec(f *testing.F) {
	f.Add(`{"proto":"http","slot":1,"generation":2,"listeners":[{"addr":"127.0.0.1:80"}],"heartbeat":1000000000,"log":{"format":"json","level":"DEBUG"}}`)
	f.Add(`{"log":{"level":"ERROR+7"},"cpu":3,"flags":{"a":"b"}}`)
	f.Add(`{"log":{"level":"DEBUG-9223372036854775807"}}`)
	f.Add(`{"PROTO":"x","proto":"y","Slot":1e3}`)
	f.Add(`{"max_body":-1,"idle_timeout":9223372036854775807}`)
	f.Add(`null`)
	f.Add(`{not json`)
	f.Fuzz(func(t *testing.T, value string) {
		if strings.IndexByte(value, 0) >= 0 {
			return // no environment carries a NUL byte
		}
		t.Setenv(SpecEnv, value)
		s, err := ReadSpec()
		if _, still := os.LookupEnv(SpecEnv); still {
			t.Fatalf("ReadSpec(%q) left %s set", value, SpecEnv)
		}
		if err != nil {
			if !strings.Contains(err.Error(), SpecEnv) {
				t.Fatalf("ReadSpec(%q): error %q does not name %s", value, err, SpecEnv)
			}
			return
		}
		kv, err := s.Env()
		if err != nil {
			t.Fatalf("ReadSpec(%q) gave %+v, which Env refuses: %v", value, s, err)
		}
		_, again, _ := strings.Cut(kv, "=")
		t.Setenv(SpecEnv, again)
		s2, err := ReadSpec()
		if err != nil {
			t.Fatalf("ReadSpec of its own Env %q: %v", again, err)
		}
		if len(s.Flags) == 0 {
			s.Flags = nil // "flags":{} and none are the same (omitempty)
		}
		if !reflect.DeepEqual(s2, s) {
			t.Fatalf("second round trip of %q:\n got %+v\nwant %+v", value, s2, s)
		}
	})
}

// refSize is the reference reading of a size flag: optional white space, a
// decimal number (a sign allowed, as strconv allows one), optional white
// space (Unicode's, as strings.TrimSpace), and one of the units, any case;
// the value must be 0..2^62.
var refSize = regexp.MustCompile(`(?is)^([+-]?[0-9]+)(.*?)(b|k|kb|kib|m|mb|mib|g|gb|gib)?$`)

func refParseSize(s string) (int64, bool) {
	m := refSize.FindStringSubmatch(strings.TrimLeftFunc(s, unicode.IsSpace))
	if m == nil || strings.TrimLeftFunc(m[2], unicode.IsSpace) != "" {
		return 0, false
	}
	n, ok := new(big.Int).SetString(strings.TrimPrefix(m[1], "+"), 10)
	if !ok || n.Sign() < 0 {
		return 0, false
	}
	shift := map[string]uint{"": 0, "b": 0, "k": 10, "kb": 10, "kib": 10, "m": 20, "mb": 20, "mib": 20, "g": 30, "gb": 30, "gib": 30}[strings.ToLower(m[3])]
	n.Lsh(n, shift)
	if n.Cmp(big.NewInt(1<<62)) > 0 {
		return 0, false
	}
	return n.Int64(), true
}

// FuzzParseSize checks --max-body's parser against the reference and that
// what it accepts prints back as bytes and reads back the same.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "1048576", "512k", "1m", "1M", "2MiB", "1g", "10kB", "", "m", "-1", "-0", "+5",
		"1.5m", "1t", "99999999999g", "12 k", " 12k", "12k ", "4611686018427387904", "4611686018427387905",
		"4194304g", "4194305g", "1\u00a0k", "\u20281k", "0x10", "1_000", "kb", "1bk", "1ib"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseSize(s)
		want, ok := refParseSize(s)
		if (err == nil) != ok || got != want {
			t.Fatalf("ParseSize(%q): got %d, %v; reference %d, ok=%v", s, got, err, want, ok)
		}
		if err == nil {
			if back, err := ParseSize(strconv.FormatInt(got, 10)); err != nil || back != got {
				t.Fatalf("ParseSize(%q) = %d, which reads back as %d, %v", s, got, back, err)
			}
		}
	})
}

// FuzzParseLogLevel: a level --log-level accepts prints (as the workers
// receive it in the Spec) and reads back as the same level.
func FuzzParseLogLevel(f *testing.F) {
	for _, s := range []string{"debug", "INFO", "warn", "error", "Error+2", "debug-3", "info+0", "loud", "",
		"ERROR+9223372036854775807", "DEBUG-9223372036854775808", "warn+-1", "info+", "info++1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lv, err := ParseLogLevel(s)
		if err != nil {
			if lv != 0 || !strings.Contains(err.Error(), "--log-level") {
				t.Fatalf("ParseLogLevel(%q): got %v, %v; want 0 and an error naming the flag", s, lv, err)
			}
			return
		}
		back, err := ParseLogLevel(lv.String())
		if err != nil || back != lv {
			t.Fatalf("ParseLogLevel(%q) = %d (%s), which reads back as %d, %v", s, lv, lv, back, err)
		}
		b, err := Log{Format: LogText, Level: lv}.Level.MarshalJSON()
		if err != nil {
			t.Fatalf("level %d does not marshal: %v", lv, err)
		}
		var fromJSON slog.Level
		if err := fromJSON.UnmarshalJSON(b); err != nil || fromJSON != lv {
			t.Fatalf("level %d: JSON %s reads back as %d, %v", lv, b, fromJSON, err)
		}
	})
}

// TestSettingsRefuseNotUTF8: what FuzzSpecEnv found. JSON replaces the bytes
// of a string that is not UTF-8 with U+FFFD, so a --cache-control of Latin-1
// bytes reached the workers as other bytes; Validate now refuses it naming
// the flag, and Env refuses to send it.
func TestSettingsRefuseNotUTF8(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Settings)
		flag   string
	}{
		{"cache control", func(s *Settings) { s.CacheControl = "max-age=\xe9" }, "--cache-control"},
		{"access log", func(s *Settings) { s.AccessLog = "/tmp/\xe4.log" }, "--access-log"},
		{"program flag", func(s *Settings) { s.Flags = map[string]string{"greeting": "\xff"} }, "--greeting"},
		{"valid UTF-8", func(s *Settings) { s.CacheControl = "max-age=60, é" }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Settings{Proto: "http"}
			s.SetDefaults()
			tc.change(&s)
			err := s.Validate()
			_, envErr := Spec{Settings: s}.Env()
			if tc.flag == "" {
				if err != nil || envErr != nil {
					t.Fatalf("got %v, %v; want no error", err, envErr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.flag) || !strings.Contains(err.Error(), "UTF-8") {
				t.Errorf("Validate: got %v, want an error naming %s and UTF-8", err, tc.flag)
			}
			if envErr == nil || !strings.Contains(envErr.Error(), "UTF-8") {
				t.Errorf("Env: got %v, want an error saying UTF-8", envErr)
			}
		})
	}
}
