package worker

import (
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/reuseport"
)

func TestSpecRoundTrip(t *testing.T) {
	cpu := 1
	in := Spec{Slot: 2, Generation: 7, Proto: "http", Listeners: []Listener{{Addr: "127.0.0.1:80"}},
		Exclusive: true, IdleTimeout: 75 * time.Second, Heartbeat: time.Second, CPU: &cpu, LogFormat: "json"}
	kv, err := in.Encode()
	if err != nil {
		t.Fatal(err)
	}
	name, value, _ := strings.Cut(kv, "=")
	t.Setenv(name, value)
	out, err := ReadSpec()
	if err != nil {
		t.Fatal(err)
	}
	if out.Slot != 2 || out.Generation != 7 || out.Listeners[0].Addr != "127.0.0.1:80" || !out.Exclusive ||
		out.IdleTimeout != 75*time.Second || out.CPU == nil || *out.CPU != 1 {
		t.Fatalf("got %+v, want %+v", out, in)
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

func TestCheckFD(t *testing.T) {
	ln, err := reuseport.Listen("127.0.0.1:0", reuseport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ln)
	if err := checkFD(ln, unix.SOCK_STREAM, true); err != nil {
		t.Errorf("listening socket: %v", err)
	}
	if err := checkFD(ln, unix.SOCK_SEQPACKET, false); err == nil {
		t.Error("listening TCP socket taken for a SEQPACKET control socket")
	}
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(s)
	if err := checkFD(s, unix.SOCK_STREAM, true); err == nil {
		t.Error("a socket that is not listening passed as a listener")
	}
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := checkFD(int(f.Fd()), unix.SOCK_STREAM, true); err == nil {
		t.Error("/dev/null passed as a socket")
	}
}
