package worker

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/reuseport"
)

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
