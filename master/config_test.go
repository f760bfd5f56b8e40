package master

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prefork/prefork/internal/cpus"
	"github.com/prefork/prefork/internal/testenv"
	"github.com/prefork/prefork/wire"
)

func TestBackoff(t *testing.T) {
	lo, hi := 100*time.Millisecond, 30*time.Second
	tests := []struct {
		crashes int
		want    time.Duration
	}{
		{0, 0}, {1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {3, 400 * time.Millisecond},
		{9, 25600 * time.Millisecond}, {10, hi}, {1000, hi},
	}
	for _, tc := range tests {
		if got := backoff(tc.crashes, lo, hi); got != tc.want {
			t.Errorf("backoff(%d): got %v, want %v", tc.crashes, got, tc.want)
		}
	}
}

func TestParseWorkers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{{"1", 1, true}, {"16", 16, true}, {"0", 0, false}, {"-2", 0, false}, {"x", 0, false}} {
		got, err := ParseWorkers(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseWorkers(%q): got %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	if n, err := ParseWorkers("auto"); err != nil || n < 1 || n > cpus.Usable() {
		t.Errorf("ParseWorkers(auto): got %d, %v", n, err)
	}
}

// TestValidate: every setting that cannot work fails the start, naming its
// flag, before anything is bound (Validate opens no socket).
func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := func() Config {
		c := Config{Settings: wire.Settings{Proto: "http"}, Workers: 2, Addrs: []string{"127.0.0.1:0"},
			MetricsListen: "127.0.0.1:0", PidFile: filepath.Join(dir, "p.pid")}
		c.SetDefaults()
		return c
	}
	live := filepath.Join(dir, "live.pid")
	if err := os.WriteFile(live, []byte(strconv.Itoa(os.Getppid())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "stale.pid")
	if err := os.WriteFile(stale, []byte("999999999\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string // "" valid, else a part of the error
	}{
		{"defaults", func(*Config) {}, ""},
		{"zero workers", func(c *Config) { c.Workers = 0 }, "--workers"},
		{"bad mode", func(c *Config) { c.Mode = "roundrobin" }, "--mode"},
		{"no address", func(c *Config) { c.Addrs = nil }, "--listen: no address"},
		{"no address but socket activation", func(c *Config) { c.Addrs, c.SocketActivation = nil, true }, ""},
		{"bad address", func(c *Config) { c.Addrs = []string{"127.0.0.1:0", "localhost"} }, "--listen"},
		{"bad port", func(c *Config) { c.Addrs = []string{"127.0.0.1:99999"} }, "--listen"},
		{"unresolvable host", func(c *Config) { c.Addrs = []string{"no.such.host.invalid:80"} }, "--listen"},
		{"bad metrics address", func(c *Config) { c.MetricsListen = "127.0.0.1" }, "--metrics-listen"},
		{"metrics disabled", func(c *Config) { c.MetricsListen = "" }, ""},
		{"negative worker timeout", func(c *Config) { c.WorkerTimeout = -time.Second }, "--worker-timeout"},
		{"pidfile in a missing directory", func(c *Config) { c.PidFile = filepath.Join(dir, "no", "p.pid") }, "--pidfile"},
		{"pidfile of a live process", func(c *Config) { c.PidFile = live }, "already running"},
		{"stale pidfile", func(c *Config) { c.PidFile = stale }, ""},
		{"admin socket path too long", func(c *Config) { c.AdminSocket = "/tmp/" + strings.Repeat("x", 120) }, "--admin-socket"},
		{"unknown user", func(c *Config) { c.User = "nosuchuser-prefork" }, "--user nosuchuser-prefork"},
		{"unknown numeric user", func(c *Config) { c.User = "424242" }, "--user 424242"},
		{"unknown group", func(c *Config) { c.Group = "nosuchgroup-prefork" }, "--group nosuchgroup-prefork"},
		{"bad log format", func(c *Config) { c.Log.Format = "xml" }, "--log-format"},
		{"negative grace", func(c *Config) { c.GracefulTimeout = -time.Second }, "--graceful-timeout"},
		{"recycling by requests", func(c *Config) { c.MaxRequests, c.MaxRequestsJitter = 1000, 100 }, ""},
		{"negative max requests", func(c *Config) { c.MaxRequests = -1 }, "--max-requests -1"},
		{"negative jitter", func(c *Config) { c.MaxRequests, c.MaxRequestsJitter = 10, -5 }, "--max-requests-jitter -5"},
		{"jitter without max requests", func(c *Config) { c.MaxRequestsJitter = 5 }, "--max-requests-jitter 5: needs --max-requests"},
		{"negative max rss", func(c *Config) { c.MaxWorkerRSS = -1 }, "--max-worker-rss"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.change(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestCredential resolves --user and --group by name and by number, as
// user.LookupId does, and never leaves a failed lookup as uid or gid 0.
func TestCredential(t *testing.T) {
	if os.Geteuid() != 0 {
		if _, err := credential("nobody", ""); err == nil || !strings.Contains(err.Error(), "root") {
			t.Errorf("not root: got %v, want an error saying the master must be root", err)
		}
		testenv.Skip(t, "resolving --user needs root")
	}
	for _, tc := range []struct {
		name, user, group string
		uid, gid          uint32
		fail              bool
	}{
		{name: "nobody by name", user: "nobody", uid: 65534, gid: 65534},
		{name: "nobody by id", user: "65534", uid: 65534, gid: 65534},
		{name: "group by name", user: "nobody", group: "root", uid: 65534, gid: 0},
		{name: "group by id", user: "nobody", group: "0", uid: 65534, gid: 0},
		{name: "group alone", group: "65534", uid: 0, gid: 65534},
		{name: "unknown id", user: "424242", fail: true},
		{name: "minus one", user: "4294967295", fail: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cred, err := credential(tc.user, tc.group)
			if tc.fail {
				if err == nil {
					t.Fatalf("got %+v, want an error", cred)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cred.Uid != tc.uid || cred.Gid != tc.gid {
				t.Errorf("got uid %d gid %d, want %d %d", cred.Uid, cred.Gid, tc.uid, tc.gid)
			}
		})
	}
}
