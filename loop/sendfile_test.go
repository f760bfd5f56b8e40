package loop_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/internal/looptest"
	"github.com/prefork/prefork/internal/testkit"
	"github.com/prefork/prefork/loop"
)

// fileSender answers each line with "[" + the file + "]": a head written,
// the file sent with SendFile (its own fd), a tail written.
type fileSender struct {
	path string
}

func (fileSender) OnOpen(*loop.Conn) {}
func (h fileSender) OnData(c *loop.Conn, in []byte) int {
	used := 0
	for {
		i := bytes.IndexByte(in[used:], '\n')
		if i < 0 {
			return used
		}
		used += i + 1
		fd, err := unix.Open(h.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			panic(err)
		}
		var st unix.Stat_t
		_ = unix.Fstat(fd, &st)
		_, _ = c.Write([]byte("["))
		_ = c.SendFile(fd, 0, st.Size, true)
		_, _ = c.Write([]byte("]"))
	}
}
func (fileSender) OnClose(*loop.Conn, loop.CloseReason) {}

func writeRandom(t *testing.T, size int) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// fdsOn counts this process's fds open on path.
func fdsOn(path string) int {
	n := 0
	for _, link := range openFDs() {
		if link == path {
			n++
		}
	}
	return n
}

// TestSendFile: bytes written before and after a file keep their order, a
// slow reader gets every byte, pipelined files follow each other.
func TestSendFile(t *testing.T) {
	path, data := writeRandom(t, 3<<20+17)
	addr, _ := looptest.Start(t, loop.Config{Handler: fileSender{path: path}})
	want := append(append([]byte("["), data...), ']')

	t.Run("slow reader", func(t *testing.T) {
		c := dial(t, addr)
		if _, err := c.Write([]byte("get\n")); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 0, len(want))
		buf := make([]byte, 64<<10)
		for len(got) < len(want) {
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("after %d bytes: %v", len(got), err)
			}
			got = append(got, buf[:n]...)
			if len(got) < 1<<20 {
				time.Sleep(time.Millisecond) // a slow client, so the socket fills
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("got %d bytes, want %d, equal %v", len(got), len(want), bytes.Equal(got, want))
		}
	})
	t.Run("pipelined", func(t *testing.T) {
		c := dial(t, addr)
		if _, err := c.Write([]byte("a\nb\nc\n")); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 3*len(want))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, bytes.Repeat(want, 3)) {
			t.Fatal("three pipelined files: bytes differ")
		}
	})
	t.Run("aborted downloads leak no fd", func(t *testing.T) {
		for i := 0; i < 1000; i++ {
			c := testkit.Dial(t, addr)
			if _, err := c.Write([]byte("get\n")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(c, make([]byte, 1000)); err != nil { // the file has begun
				t.Fatal(err)
			}
			_ = c.SetLinger(0) // a reset: the client is gone mid-file
			c.Close()
		}
		testkit.WaitFor(t, "every file fd closed", 10*time.Second, func() bool { return fdsOn(path) == 0 })
	})
}

// TestSendFileShrunk: a file truncated before it is all sent closes the
// connection instead of sending a short body.
func TestSendFileShrunk(t *testing.T) {
	path, _ := writeRandom(t, 8<<20)
	shrink := make(chan struct{})
	h := &shrinker{path: path, shrink: shrink}
	addr, _ := looptest.Start(t, loop.Config{Handler: h})
	c := dial(t, addr)
	if _, err := c.Write([]byte("get\n")); err != nil {
		t.Fatal(err)
	}
	<-shrink // the file is queued, and most of it not yet sent
	if err := os.Truncate(path, 1<<20); err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, c)
	if n >= 8<<20 {
		t.Fatalf("got %d bytes (%v), want the connection closed short of 8 MiB", n, err)
	}
}

type shrinker struct {
	path   string
	shrink chan struct{}
}

func (*shrinker) OnOpen(*loop.Conn) {}
func (h *shrinker) OnData(c *loop.Conn, in []byte) int {
	fd, err := unix.Open(h.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		panic(err)
	}
	_ = c.SendFile(fd, 0, 8<<20, true)
	close(h.shrink)
	return len(in)
}
func (*shrinker) OnClose(*loop.Conn, loop.CloseReason) {}
