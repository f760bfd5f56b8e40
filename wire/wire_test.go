package wire

import (
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestSpecRoundTrip sends a Spec with every field set through the
// environment, as the master does, and compares the whole value.
func TestSpecRoundTrip(t *testing.T) {
	cpu := 1
	in := Spec{
		Settings: Settings{
			Proto: "http", IdleTimeout: 75 * time.Second, GracefulTimeout: 3 * time.Second,
			Log: Log{Format: LogJSON, Level: slog.LevelDebug}, MaxBody: 4096,
			MaxInflight: 7, Flags: map[string]string{"greeting": "hi"}, AccessLog: "/var/log/x.log",
			Root: "/srv/www", CacheControl: "public, max-age=60", FollowSymlinks: true, Autoindex: true,
			HeaderTimeout: 9 * time.Second, WriteTimeout: 29 * time.Second, MaxConns: 500,
		},
		Slot: 2, Generation: 7, Listeners: []Listener{{Addr: "127.0.0.1:80"}, {Addr: "[::1]:81"}},
		Exclusive: true, Handoff: true, Heartbeat: time.Second, RecycleAfter: 1234, CPU: &cpu, AccessLogFD: true, RootFD: true,
	}
	// Every field must be set, so that one the encoding drops shows.
	checkAllSet(t, reflect.ValueOf(in), "Spec")
	kv, err := in.Env()
	if err != nil {
		t.Fatal(err)
	}
	name, value, _ := strings.Cut(kv, "=")
	t.Setenv(name, value)
	out, err := ReadSpec()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", out, in)
	}
	if _, ok := os.LookupEnv(SpecEnv); ok {
		t.Errorf("%s still set after ReadSpec: a program the worker starts would inherit it", SpecEnv)
	}
	if _, err := ReadSpec(); err == nil || !strings.Contains(err.Error(), "prefork serve") {
		t.Errorf("ReadSpec without the variable: got %v, want an error naming prefork serve", err)
	}
	t.Setenv(SpecEnv, "{not json")
	if _, err := ReadSpec(); err == nil {
		t.Error("ReadSpec of bad JSON: got no error")
	}
}

func checkAllSet(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	for i := 0; i < v.NumField(); i++ {
		f, name := v.Field(i), path+"."+v.Type().Field(i).Name
		if !v.Type().Field(i).IsExported() {
			continue // set in the worker, never sent
		}
		if f.Kind() == reflect.Struct {
			checkAllSet(t, f, name)
			continue
		}
		if f.IsZero() {
			t.Errorf("%s is zero: set it, so that the round trip covers it", name)
		}
	}
}

func TestSettingsValidate(t *testing.T) {
	good := func() Settings {
		s := Settings{Proto: "http"}
		s.SetDefaults()
		return s
	}
	if s := good(); s.GracefulTimeout != DefaultGracefulTimeout || s.Log.Format != LogText || s.Log.Level != slog.LevelInfo {
		t.Errorf("defaults: got %+v", s)
	}
	for _, tc := range []struct {
		name   string
		change func(*Settings)
		flag   string // "" valid
	}{
		{"defaults", func(*Settings) {}, ""},
		{"no protocol", func(s *Settings) { s.Proto = "" }, "--proto"},
		{"negative idle", func(s *Settings) { s.IdleTimeout = -time.Second }, "--idle-timeout"},
		{"zero idle disables", func(s *Settings) { s.IdleTimeout = 0 }, ""},
		{"negative grace", func(s *Settings) { s.GracefulTimeout = -1 }, "--graceful-timeout"},
		{"bad log format", func(s *Settings) { s.Log.Format = "xml" }, "--log-format"},
		{"json logs", func(s *Settings) { s.Log.Format = LogJSON }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := good()
			tc.change(&s)
			err := s.Validate()
			switch {
			case tc.flag == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tc.flag != "" && (err == nil || !strings.Contains(err.Error(), tc.flag)):
				t.Errorf("got %v, want an error naming %s", err, tc.flag)
			}
		})
	}
}

func TestParseLogLevel(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want slog.Level
		ok   bool
	}{{"debug", slog.LevelDebug, true}, {"INFO", slog.LevelInfo, true}, {"warn", slog.LevelWarn, true},
		{"error", slog.LevelError, true}, {"loud", 0, false}, {"", 0, false}} {
		got, err := ParseLogLevel(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseLogLevel(%q): got %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "--log-level") {
			t.Errorf("ParseLogLevel(%q): error %q does not name the flag", tc.in, err)
		}
	}
}

func TestControlMessages(t *testing.T) {
	for _, tc := range []struct {
		msg      string
		conns    int
		requests int64
		ok       bool
	}{
		{"HB 12 345", 12, 345, true}, {"HB 0 0", 0, 0, true},
		// An older worker's heartbeat (no request count), as a master
		// upgraded in place reads it from the workers it adopted.
		{"HB 12", 12, -1, true}, {"HB 0", 0, -1, true},
		{"HB", -1, -1, true}, {"HB x", -1, -1, true}, {"HB 3 x", 3, -1, true}, {"HB 3 -1", 3, -1, true},
		{"HB x 9", -1, 9, true}, {"READY", 0, 0, false}, {"HBX 1", 0, 0, false},
	} {
		conns, requests, ok := ParseHeartbeat([]byte(tc.msg))
		if conns != tc.conns || requests != tc.requests || ok != tc.ok {
			t.Errorf("ParseHeartbeat(%q): got %d, %d, %v; want %d, %d, %v", tc.msg, conns, requests, ok, tc.conns, tc.requests, tc.ok)
		}
	}
	if got := string(Heartbeat(5, 1234)); got != "HB 5 1234" {
		t.Errorf("Heartbeat(5, 1234): got %q, want %q", got, "HB 5 1234")
	}
	if n, r, ok := ParseHeartbeat(Heartbeat(5, 1234)); n != 5 || r != 1234 || !ok {
		t.Errorf("Heartbeat(5, 1234) round trip: got %d, %d, %v", n, r, ok)
	}
	if id, ok := ParseMetricsRequest(MetricsRequest("42")); id != "42" || !ok {
		t.Errorf("metrics request round trip: got %q, %v", id, ok)
	}
	if _, ok := ParseMetricsRequest([]byte("METRICS 1\nbody")); ok {
		t.Error("a metrics reply parsed as a request")
	}
	body := []byte("\x00\x01binary\nwith newline")
	id, got, ok := ParseMetricsReply(MetricsReply("7", body))
	if id != "7" || string(got) != string(body) || !ok {
		t.Errorf("metrics reply round trip: got %q, %q, %v", id, got, ok)
	}
	if _, _, ok := ParseMetricsReply([]byte("METRICS 7")); ok {
		t.Error("a request parsed as a reply")
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"1048576", 1 << 20, true}, {"512k", 512 << 10, true}, {"1m", 1 << 20, true},
		{"1M", 1 << 20, true}, {"2MiB", 2 << 20, true}, {"1g", 1 << 30, true}, {"10kB", 10 << 10, true},
		{"", 0, false}, {"m", 0, false}, {"-1", 0, false}, {"1.5m", 0, false}, {"1t", 0, false},
		{"99999999999g", 0, false}, {"12 k", 12 << 10, true},
	} {
		got, err := ParseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSize(%q): got %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
