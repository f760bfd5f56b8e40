package httpd

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prefork/prefork/internal/testkit"
)

// uploader streams the bodies of /upload into a hash and answers with the
// size and digest; everything else is buffered and echoed.
type uploader struct {
	ended   chan error    // every BodyFunc end, for the tests
	started chan struct{} // every streamed body begun
}

func (u *uploader) Serve(c *Ctx) { _, _ = c.Write(c.Body()) }

func (u *uploader) StreamBody(c *Ctx) BodyFunc {
	if string(c.Path()) != "/upload" {
		return nil
	}
	select {
	case u.started <- struct{}{}:
	default:
	}
	d := c.Defer()
	var h hash.Hash = sha256.New()
	n := 0
	return func(piece []byte, err error) {
		switch {
		case err == nil:
			n += len(piece)
			h.Write(piece)
		case err == io.EOF:
			fmt.Fprintf(d, "%d %x", n, h.Sum(nil))
			d.Done()
			u.ended <- nil
		default:
			d.SetStatus(400)
			d.Done()
			u.ended <- err
		}
	}
}

func TestStreamedBodies(t *testing.T) {
	u := &uploader{ended: make(chan error, 8), started: make(chan struct{}, 1)}
	addr, _, _ := startHandler(t, Options{Handler: u, MaxBody: 1 << 20})
	big := bytes.Repeat([]byte("streamed body. "), 8<<20/15)
	sum := sha256.Sum256(big)
	want := fmt.Sprintf("%d %x", len(big), sum)
	client := &http.Client{Timeout: testkit.IOTimeout}
	defer client.CloseIdleConnections()

	t.Run("content-length over MaxBody", func(t *testing.T) {
		resp, err := client.Post("http://"+addr+"/upload", "application/octet-stream", bytes.NewReader(big))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != want {
			t.Errorf("got %d %q, want %q", resp.StatusCode, b, want)
		}
		if err := <-u.ended; err != nil {
			t.Errorf("BodyFunc ended with %v", err)
		}
	})
	t.Run("chunked, then a pipelined request", func(t *testing.T) {
		conn := testkit.Dial(t, addr)
		br := bufio.NewReader(conn)
		go func() {
			w := bufio.NewWriter(conn)
			fmt.Fprintf(w, "POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
			for i := 0; i < len(big); i += 100000 {
				p := big[i:min(i+100000, len(big))]
				fmt.Fprintf(w, "%x;ext=1\r\n%s\r\n", len(p), p)
			}
			fmt.Fprintf(w, "0\r\nTrailer: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
			w.Flush()
		}()
		if _, body := readResp(t, br, "POST"); body != want {
			t.Errorf("upload: got %q, want %q", body, want)
		}
		if _, body := readResp(t, br, "POST"); body != "hello" {
			t.Errorf("the request after it: got %q", body)
		}
		if err := <-u.ended; err != nil {
			t.Errorf("BodyFunc ended with %v", err)
		}
	})
	t.Run("bad chunk framing", func(t *testing.T) {
		conn := testkit.Dial(t, addr)
		io.WriteString(conn, "POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")
		br := bufio.NewReader(conn)
		resp, _ := readResp(t, br, "POST")
		resp2, _ := readResp(t, br, "POST")
		if resp.StatusCode != 400 || resp2.StatusCode != 400 {
			t.Errorf("got %d then %d, want the deferred 400 and the framing 400", resp.StatusCode, resp2.StatusCode)
		}
		if err := <-u.ended; !errors.Is(err, ErrBadChunk) {
			t.Errorf("BodyFunc ended with %v, want ErrBadChunk", err)
		}
	})
	t.Run("client goes away mid-body", func(t *testing.T) {
		for len(u.started) > 0 { // the earlier subtests' starts
			<-u.started
		}
		conn := testkit.Dial(t, addr)
		io.WriteString(conn, "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: "+strconv.Itoa(1<<30)+"\r\n\r\n"+strings.Repeat("x", 1000))
		select {
		case <-u.started:
		case <-time.After(5 * time.Second):
			t.Fatal("the body never began streaming")
		}
		conn.Close()
		select {
		case err := <-u.ended:
			if !errors.Is(err, ErrBodyAborted) {
				t.Errorf("BodyFunc ended with %v, want ErrBodyAborted", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("BodyFunc never ended")
		}
	})
}
