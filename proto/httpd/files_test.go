package httpd

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prefork/prefork/internal/looptest"
	"github.com/prefork/prefork/internal/testkit"
)

type fileTree struct {
	dir string
	big []byte
}

func makeTree(t *testing.T) fileTree {
	t.Helper()
	dir := t.TempDir()
	big := make([]byte, 2<<20+5)
	_, _ = rand.Read(big)
	files := map[string]string{
		"index.html":     "<h1>home</h1>",
		"a.txt":          "hello, files",
		"sub/index.html": "sub index",
		"style.css":      "body{}",
		"style.css.gz":   "GZ-BYTES",
		"style.css.br":   "BR-BYTES",
		".env":           "SECRET=1",
		"caf\u00e9.txt":  "accent",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.Symlink(outside, filepath.Join(dir, "out-link"))
	_ = os.Symlink("a.txt", filepath.Join(dir, "in-link"))
	return fileTree{dir: dir, big: big}
}

func startFiles(t *testing.T, tree fileTree, opts FileOptions) string {
	t.Helper()
	root, err := OpenRoot(tree.dir, RootOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	addr, _ := looptest.Start(t, loopConfig(New(Options{Handler: FileServer(root, opts)})))
	return addr
}

func TestFileServer(t *testing.T) {
	tree := makeTree(t)
	addr := startFiles(t, tree, FileOptions{CacheControl: "public, max-age=60"})
	client := &http.Client{Timeout: testkit.IOTimeout, Transport: &http.Transport{DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer client.CloseIdleConnections()
	do := func(t *testing.T, method, path string, hdr ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := do(t, "GET", "/a.txt")
	etag, lastMod := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if resp.StatusCode != 200 || body != "hello, files" || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" ||
		resp.Header.Get("Accept-Ranges") != "bytes" || resp.Header.Get("Cache-Control") != "public, max-age=60" ||
		!strings.HasPrefix(etag, `"`) || lastMod == "" || resp.ContentLength != 12 {
		t.Fatalf("GET /a.txt: got %d %q %v", resp.StatusCode, body, resp.Header)
	}
	for _, tc := range []struct {
		name, method, path string
		hdr                []string
		code               int
		body               string
		check              func(h http.Header) bool
	}{
		{name: "head", method: "HEAD", path: "/a.txt", code: 200, check: func(h http.Header) bool { return h.Get("Content-Length") == "12" }},
		{name: "if-none-match", method: "GET", path: "/a.txt", hdr: []string{"If-None-Match", etag}, code: 304,
			check: func(h http.Header) bool { return h.Get("ETag") == etag }},
		{name: "if-none-match weak list", method: "GET", path: "/a.txt", hdr: []string{"If-None-Match", `"x", W/` + etag}, code: 304},
		{name: "if-none-match other", method: "GET", path: "/a.txt", hdr: []string{"If-None-Match", `"other"`}, code: 200, body: "hello, files"},
		{name: "if-modified-since", method: "GET", path: "/a.txt", hdr: []string{"If-Modified-Since", lastMod}, code: 304},
		{name: "if-modified-since old", method: "GET", path: "/a.txt", hdr: []string{"If-Modified-Since", "Mon, 02 Jan 2006 15:04:05 GMT"}, code: 200},
		{name: "range", method: "GET", path: "/a.txt", hdr: []string{"Range", "bytes=2-4"}, code: 206, body: "llo",
			check: func(h http.Header) bool { return h.Get("Content-Range") == "bytes 2-4/12" }},
		{name: "range suffix", method: "GET", path: "/a.txt", hdr: []string{"Range", "bytes=-5"}, code: 206, body: "files"},
		{name: "range open", method: "GET", path: "/a.txt", hdr: []string{"Range", "bytes=7-"}, code: 206, body: "files"},
		{name: "range past end", method: "GET", path: "/a.txt", hdr: []string{"Range", "bytes=50-"}, code: 416,
			check: func(h http.Header) bool { return h.Get("Content-Range") == "bytes */12" }},
		{name: "ranges several", method: "GET", path: "/a.txt", hdr: []string{"Range", "bytes=0-1,3-4"}, code: 200, body: "hello, files"},
		{name: "if-range matches", method: "GET", path: "/a.txt", hdr: []string{"Range", "bytes=0-4", "If-Range", etag}, code: 206, body: "hello"},
		{name: "if-range stale", method: "GET", path: "/a.txt", hdr: []string{"Range", "bytes=0-4", "If-Range", `"old"`}, code: 200, body: "hello, files"},
		{name: "index", method: "GET", path: "/", code: 200, body: "<h1>home</h1>",
			check: func(h http.Header) bool { return h.Get("Content-Type") == "text/html; charset=utf-8" }},
		{name: "dir redirect", method: "GET", path: "/sub?x=1", code: 301, check: func(h http.Header) bool { return h.Get("Location") == "/sub/?x=1" }},
		{name: "dir index", method: "GET", path: "/sub/", code: 200, body: "sub index"},
		{name: "dir without index", method: "GET", path: "/empty/", code: 404},
		{name: "file with slash", method: "GET", path: "/a.txt/", code: 404},
		{name: "missing", method: "GET", path: "/nope", code: 404},
		{name: "utf-8 name", method: "GET", path: "/caf%C3%A9.txt", code: 200, body: "accent"},
		{name: "post", method: "POST", path: "/a.txt", code: 405, check: func(h http.Header) bool { return h.Get("Allow") == "GET, HEAD" }},
		{name: "dotfile", method: "GET", path: "/.env", code: 404},
		{name: "link outside", method: "GET", path: "/out-link", code: 404},
		{name: "link inside, not followed by default", method: "GET", path: "/in-link", code: 404},
		{name: "traversal", method: "GET", path: "/%2e%2e/%2e%2e/etc/passwd", code: 400},
		{name: "encoded slash", method: "GET", path: "/%2fetc%2fpasswd", code: 400},
		{name: "br", method: "GET", path: "/style.css", hdr: []string{"Accept-Encoding", "gzip, br"}, code: 200, body: "BR-BYTES",
			check: func(h http.Header) bool {
				return h.Get("Content-Encoding") == "br" && h.Get("Vary") == "Accept-Encoding" && h.Get("Content-Type") == "text/css; charset=utf-8"
			}},
		{name: "gzip", method: "GET", path: "/style.css", hdr: []string{"Accept-Encoding", "gzip"}, code: 200, body: "GZ-BYTES",
			check: func(h http.Header) bool { return h.Get("Content-Encoding") == "gzip" }},
		{name: "br refused", method: "GET", path: "/style.css", hdr: []string{"Accept-Encoding", "br;q=0, gzip"}, code: 200, body: "GZ-BYTES"},
		{name: "identity", method: "GET", path: "/style.css", code: 200, body: "body{}",
			check: func(h http.Header) bool { return h.Get("Content-Encoding") == "" && h.Get("Vary") == "Accept-Encoding" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, tc.method, tc.path, tc.hdr...)
			if resp.StatusCode != tc.code || (tc.body != "" && body != tc.body) || (tc.check != nil && !tc.check(resp.Header)) {
				t.Errorf("got %d %q %v, want %d %q", resp.StatusCode, body, resp.Header, tc.code, tc.body)
			}
			if strings.Contains(body, "outside") || strings.Contains(body, "SECRET") || strings.Contains(body, "root:") {
				t.Errorf("a refused file's content came back: %q", body)
			}
		})
	}
	t.Run("big file by sendfile, pipelined", func(t *testing.T) {
		conn := testkit.Dial(t, addr)
		fmt.Fprintf(conn, "GET /big.bin HTTP/1.1\r\nHost: h\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: h\r\n\r\n")
		br := bufio.NewReader(conn)
		if _, b := readResp(t, br, "GET"); sha256.Sum256([]byte(b)) != sha256.Sum256(tree.big) {
			t.Fatalf("big.bin: got %d bytes, not the file", len(b))
		}
		if _, b := readResp(t, br, "GET"); b != "hello, files" {
			t.Fatalf("after big.bin: got %q", b)
		}
	})
	t.Run("changed file seen after CacheValid", func(t *testing.T) {
		p := filepath.Join(tree.dir, "a.txt")
		if err := os.WriteFile(p+".new", []byte("new contents!"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(p+".new", p); err != nil {
			t.Fatal(err)
		}
		testkit.WaitFor(t, "the new file served", 5*time.Second, func() bool {
			_, b := do(t, "GET", "/a.txt")
			return b == "new contents!"
		})
	})
	t.Run("range of the big file", func(t *testing.T) {
		resp, b := do(t, "GET", "/big.bin", "Range", "bytes=1000000-1999999")
		if resp.StatusCode != 206 || !bytes.Equal([]byte(b), tree.big[1000000:2000000]) {
			t.Errorf("got %d, %d bytes", resp.StatusCode, len(b))
		}
	})
}

func TestFileServerAutoindex(t *testing.T) {
	tree := makeTree(t)
	if err := os.WriteFile(filepath.Join(tree.dir, "empty", "<b>&x.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(tree.dir, "empty", "child"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree.dir, "empty", ".hidden"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := startFiles(t, tree, FileOptions{Autoindex: true})
	resp, err := http.Get("http://" + addr + "/empty/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" ||
		!strings.Contains(body, `<a href="%3Cb%3E&amp;x.txt">&lt;b&gt;&amp;x.txt</a>`) ||
		!strings.Contains(body, `<a href="child/">child/</a>`) || strings.Contains(body, "hidden") || strings.Contains(body, "<b>") {
		t.Errorf("got %d %q", resp.StatusCode, body)
	}
	// A directory with an index still serves it.
	resp, err = http.Get("http://" + addr + "/sub/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "sub index" {
		t.Errorf("/sub/ with autoindex: got %q", b)
	}
}
