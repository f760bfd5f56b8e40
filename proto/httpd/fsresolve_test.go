package httpd

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/prefork/prefork/internal/testenv"
)

// cleanPathTests are CleanPath's rows; wantStatus 0 means accepted.
var cleanPathTests = []struct {
	name       string
	raw        string
	wantRel    string
	wantDir    bool
	wantStatus int
}{
	{name: "root", raw: "/", wantRel: "", wantDir: true},
	{name: "file", raw: "/hello.txt", wantRel: "hello.txt"},
	{name: "nested", raw: "/a/b/c.txt", wantRel: "a/b/c.txt"},
	{name: "directory with slash", raw: "/a/b/", wantRel: "a/b", wantDir: true},
	{name: "directory without slash", raw: "/a/b", wantRel: "a/b"},
	{name: "encoded space", raw: "/a%20b.txt", wantRel: "a b.txt"},
	{name: "encoded letter", raw: "/hell%6F.txt", wantRel: "hello.txt"},
	{name: "encoded UTF-8", raw: "/caf%C3%A9.txt", wantRel: "café.txt"},
	{name: "raw UTF-8", raw: "/café.txt", wantRel: "café.txt"},
	{name: "encoded percent decoded once", raw: "/%252e%252e/x", wantRel: "%2e%2e/x"},
	{name: "dots inside a name", raw: "/a..b.txt", wantRel: "a..b.txt"},
	{name: "three dots is a name", raw: "/...", wantRel: "..."},
	{name: "dotfile left to Root", raw: "/.git/config", wantRel: ".git/config"},
	{name: "encoded dotfile left to Root", raw: "/%2eenv", wantRel: ".env"},
	{name: "query characters are names", raw: "/a%3Fb%23c", wantRel: "a?b#c"},
	{name: "plus is not a space", raw: "/a+b", wantRel: "a+b"},

	{name: "empty", raw: "", wantStatus: 400},
	{name: "asterisk", raw: "*", wantStatus: 400},
	{name: "relative", raw: "a/b", wantStatus: 400},
	{name: "dot dot", raw: "/../etc/passwd", wantStatus: 400},
	{name: "dot dot at end", raw: "/a/..", wantStatus: 400},
	{name: "dot dot with slash", raw: "/a/../", wantStatus: 400},
	{name: "dot", raw: "/./hello.txt", wantStatus: 400},
	{name: "dot at end", raw: "/a/.", wantStatus: 400},
	{name: "dot directory", raw: "/./", wantStatus: 400},
	{name: "encoded dot dot", raw: "/%2e%2e/%2e%2e/etc/passwd", wantStatus: 400},
	{name: "encoded dot dot upper", raw: "/%2E%2E/etc/passwd", wantStatus: 400},
	{name: "half encoded dot dot", raw: "/.%2e/etc/passwd", wantStatus: 400},
	{name: "encoded dot dot inside", raw: "/a/%2e%2e/b", wantStatus: 400},
	{name: "encoded dot", raw: "/%2e/hello.txt", wantStatus: 400},
	{name: "encoded slash", raw: "/%2fetc%2fpasswd", wantStatus: 400},
	{name: "encoded slash upper", raw: "/a%2Fb", wantStatus: 400},
	{name: "encoded backslash", raw: "/..%5c..%5cetc", wantStatus: 400},
	{name: "encoded backslash upper", raw: "/a%5Cb", wantStatus: 400},
	{name: "raw backslash", raw: "/..\\..\\etc", wantStatus: 400},
	{name: "double slash at start", raw: "//etc/passwd", wantStatus: 400},
	{name: "double slash inside", raw: "/a//b", wantStatus: 400},
	{name: "double slash at end", raw: "/a//", wantStatus: 400},
	{name: "encoded NUL", raw: "/a%00b", wantStatus: 400},
	{name: "raw NUL", raw: "/a\x00b", wantStatus: 400},
	{name: "encoded newline", raw: "/a%0ab", wantStatus: 400},
	{name: "encoded CR", raw: "/a%0Db", wantStatus: 400},
	{name: "raw tab", raw: "/a\tb", wantStatus: 400},
	{name: "encoded DEL", raw: "/a%7fb", wantStatus: 400},
	{name: "overlong dot dot", raw: "/%c0%ae%c0%ae/", wantStatus: 400},
	{name: "overlong dot dot path", raw: "/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", wantStatus: 400},
	{name: "overlong slash", raw: "/..%c0%af..%c0%afetc", wantStatus: 400},
	{name: "three-byte overlong dot", raw: "/%e0%80%ae%e0%80%ae/", wantStatus: 400},
	{name: "invalid byte", raw: "/%ff", wantStatus: 400},
	{name: "raw invalid byte", raw: "/a\xffb", wantStatus: 400},
	{name: "encoded surrogate", raw: "/%ed%a0%80", wantStatus: 400},
	{name: "truncated UTF-8", raw: "/caf%C3", wantStatus: 400},
	{name: "bare percent", raw: "/%", wantStatus: 400},
	{name: "short escape", raw: "/a%2", wantStatus: 400},
	{name: "bad hex", raw: "/a%zzb", wantStatus: 400},
	{name: "half bad hex", raw: "/a%2gb", wantStatus: 400},
}

func TestCleanPath(t *testing.T) {
	for _, tt := range cleanPathTests {
		t.Run(tt.name, func(t *testing.T) {
			rel, dir, err := CleanPath([]byte(tt.raw))
			if tt.wantStatus != 0 {
				if err == nil {
					t.Fatalf("CleanPath(%q) = %q, %v, nil; want status %d", tt.raw, rel, dir, tt.wantStatus)
				}
				if err.Status != tt.wantStatus || rel != "" || dir {
					t.Errorf("CleanPath(%q) = %q, %v, %v; want \"\", false, status %d", tt.raw, rel, dir, err, tt.wantStatus)
				}
				return
			}
			if err != nil || rel != tt.wantRel || dir != tt.wantDir {
				t.Errorf("CleanPath(%q) = %q, %v, %v; want %q, %v, nil", tt.raw, rel, dir, err, tt.wantRel, tt.wantDir)
			}
		})
	}
}

// TestCleanPathAllocs checks that a refusal does not allocate and an
// accepted path allocates only rel.
func TestCleanPathAllocs(t *testing.T) {
	for _, tt := range []struct {
		name string
		raw  string
		want float64
	}{
		{"refused", "/%2e%2e/etc/passwd", 0},
		{"accepted", "/static/caf%C3%A9.css", 1},
	} {
		raw := []byte(tt.raw)
		got := testing.AllocsPerRun(100, func() { _, _, _ = CleanPath(raw) })
		if got != tt.want {
			t.Errorf("%s: CleanPath(%q) allocates %v times, want %v", tt.name, tt.raw, got, tt.want)
		}
	}
}

// Contents of the files the test tree holds outside the root, or as
// dotfiles: no refused row may ever read them.
const (
	outsideSecret = "OUTSIDE_SECRET\n"
	envSecret     = "ENV_SECRET\n"
	gitSecret     = "GIT_SECRET\n"
)

// rootTests run a request path through CleanPath and Root.Open (the way
// rootFetch, below, serves it) on the tree makeRootTree builds.
var rootTests = []struct {
	name       string
	raw        string
	follow     bool // RootOptions.FollowSymlinks
	dotfiles   bool // RootOptions.AllowDotfiles
	unpriv     bool // run with an unprivileged user's permission checks
	wantStatus int
	wantBody   string
}{
	{name: "root index", raw: "/", wantStatus: 200, wantBody: "root index\n"},
	{name: "plain file", raw: "/hello.txt", wantStatus: 200, wantBody: "hello\n"},
	{name: "nested file", raw: "/sub/nested/deep.txt", wantStatus: 200, wantBody: "deep\n"},
	{name: "directory index", raw: "/sub/", wantStatus: 200, wantBody: "sub index\n"},
	{name: "directory without slash redirects", raw: "/sub", wantStatus: 301},
	{name: "directory without index", raw: "/sub/nested/", wantStatus: 404},
	{name: "encoded space", raw: "/a%20b.txt", wantStatus: 200, wantBody: "space\n"},
	{name: "encoded UTF-8 name", raw: "/caf%C3%A9.txt", wantStatus: 200, wantBody: "cafe\n"},
	{name: "encoded letter", raw: "/hell%6f.txt", wantStatus: 200, wantBody: "hello\n"},
	{name: "dots inside a name", raw: "/a..b.txt", wantStatus: 200, wantBody: "dots\n"},
	{name: "missing", raw: "/nope.txt", wantStatus: 404},
	{name: "file with trailing slash", raw: "/hello.txt/", wantStatus: 404},
	{name: "file as a directory", raw: "/hello.txt/x", wantStatus: 404},
	{name: "double-encoded dot dot is a name", raw: "/%252e%252e/hello.txt", wantStatus: 404},
	{name: "name too long", raw: "/" + strings.Repeat("a", 300), wantStatus: 414},
	{name: "path too long", raw: strings.Repeat("/a", 2100), wantStatus: 414},

	// traversal
	{name: "dot dot", raw: "/../etc/passwd", wantStatus: 400},
	{name: "dot dot following", raw: "/../etc/passwd", follow: true, dotfiles: true, wantStatus: 400},
	{name: "dot dot from a subdirectory", raw: "/sub/../../outside/secret.txt", wantStatus: 400},
	{name: "encoded dot dot", raw: "/%2e%2e/%2e%2e/etc/passwd", wantStatus: 400},
	{name: "encoded dot dot inside", raw: "/a/%2e%2e/b", wantStatus: 400},
	{name: "encoded dot dot to outside", raw: "/%2e%2e/outside/secret.txt", follow: true, wantStatus: 400},
	{name: "encoded slash", raw: "/%2fetc%2fpasswd", wantStatus: 400},
	{name: "encoded backslash", raw: "/..%5c..%5cetc", wantStatus: 400},
	{name: "raw backslash", raw: "/..\\outside\\secret.txt", wantStatus: 400},
	{name: "double slash", raw: "//etc/passwd", wantStatus: 400},
	{name: "encoded NUL", raw: "/a%00b", wantStatus: 400},
	{name: "NUL before a name", raw: "/hello.txt%00.html", wantStatus: 400},
	{name: "overlong dot dot", raw: "/%c0%ae%c0%ae/", wantStatus: 400},
	{name: "overlong dot dot to outside", raw: "/%c0%ae%c0%ae/outside/secret.txt", wantStatus: 400},

	// dotfiles
	{name: "git config", raw: "/.git/config", wantStatus: 404},
	{name: "git directory", raw: "/.git/", wantStatus: 404},
	{name: "env", raw: "/.env", wantStatus: 404},
	{name: "encoded env", raw: "/%2eenv", wantStatus: 404},
	{name: "dotfile in a subdirectory", raw: "/sub/.hidden", wantStatus: 404},
	{name: "env following symlinks", raw: "/.env", follow: true, wantStatus: 404},
	{name: "env allowed", raw: "/.env", dotfiles: true, wantStatus: 200, wantBody: envSecret},
	{name: "git config allowed", raw: "/.git/config", dotfiles: true, wantStatus: 200, wantBody: gitSecret},
	// The dotfile rule is about names in the request: a link the operator
	// put in the root is followed to wherever inside the root it points.
	{name: "symlink to a dotfile, following", raw: "/link-env", follow: true, wantStatus: 200, wantBody: envSecret},
	{name: "symlink to a dotfile", raw: "/link-env", wantStatus: 404},

	// symlinks inside the root
	{name: "symlink inside", raw: "/link-in", wantStatus: 404},
	{name: "symlink inside, following", raw: "/link-in", follow: true, wantStatus: 200, wantBody: "hello\n"},
	{name: "symlink with dot dot staying inside, following", raw: "/link-dotdot-in", follow: true, wantStatus: 200, wantBody: "hello\n"},
	{name: "directory symlink inside", raw: "/dirlink-in/index.html", wantStatus: 404},
	{name: "directory symlink inside, following", raw: "/dirlink-in/index.html", follow: true, wantStatus: 200, wantBody: "sub index\n"},
	{name: "directory symlink inside as directory, following", raw: "/dirlink-in/", follow: true, wantStatus: 200, wantBody: "sub index\n"},
	{name: "absolute symlink to inside", raw: "/link-abs-in", wantStatus: 404},
	{name: "absolute symlink to inside, following", raw: "/link-abs-in", follow: true, wantStatus: 404},
	{name: "symlink out and back in, following", raw: "/link-roundtrip", follow: true, wantStatus: 404},

	// symlinks leading outside
	{name: "symlink outside", raw: "/link-out", wantStatus: 404},
	{name: "symlink outside, following", raw: "/link-out", follow: true, dotfiles: true, wantStatus: 404},
	{name: "absolute symlink outside", raw: "/link-out-abs", wantStatus: 404},
	{name: "absolute symlink outside, following", raw: "/link-out-abs", follow: true, wantStatus: 404},
	{name: "symlink to /etc/passwd", raw: "/link-passwd", wantStatus: 404},
	{name: "symlink to /etc/passwd, following", raw: "/link-passwd", follow: true, wantStatus: 404},
	{name: "symlink through /proc, following", raw: "/link-proc", follow: true, wantStatus: 404},
	{name: "directory symlink outside", raw: "/dirlink-out/secret.txt", wantStatus: 404},
	{name: "directory symlink outside, following", raw: "/dirlink-out/secret.txt", follow: true, wantStatus: 404},
	{name: "relative directory symlink outside, following", raw: "/dirlink-out-rel/secret.txt", follow: true, wantStatus: 404},
	{name: "directory symlink to /, following", raw: "/dirlink-root/etc/passwd", follow: true, wantStatus: 404},
	{name: "directory symlink outside as directory, following", raw: "/dirlink-out/", follow: true, wantStatus: 404},

	// not regular files; permissions
	{name: "FIFO does not block and is not served", raw: "/fifo", wantStatus: 404},
	{name: "readable as an unprivileged user", raw: "/hello.txt", unpriv: true, wantStatus: 200, wantBody: "hello\n"},
	{name: "unreadable file", raw: "/noread.txt", unpriv: true, wantStatus: 403},
	{name: "unsearchable directory", raw: "/noread-dir/x.txt", unpriv: true, wantStatus: 403},
}

// makeRootTree builds the test tree in a new temporary directory and returns
// the root's path (base/root) and the outside directory's (base/outside).
func makeRootTree(t testing.TB) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "root")
	outside = filepath.Join(base, "outside")
	for _, d := range []string{root, outside, root + "/sub/nested", root + "/.git", root + "/noread-dir"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		root + "/index.html":          "root index\n",
		root + "/hello.txt":           "hello\n",
		root + "/a b.txt":             "space\n",
		root + "/café.txt":            "cafe\n",
		root + "/a..b.txt":            "dots\n",
		root + "/sub/index.html":      "sub index\n",
		root + "/sub/nested/deep.txt": "deep\n",
		root + "/sub/.hidden":         "hidden\n",
		root + "/.env":                envSecret,
		root + "/.git/config":         gitSecret,
		root + "/noread.txt":          "noread\n",
		root + "/noread-dir/x.txt":    "noread\n",
		outside + "/secret.txt":       outsideSecret,
	}
	for name, body := range files {
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"link-in":         "hello.txt",
		"link-dotdot-in":  "sub/../hello.txt",
		"link-roundtrip":  "../root/hello.txt",
		"link-abs-in":     root + "/hello.txt",
		"link-env":        ".env",
		"link-out":        "../outside/secret.txt",
		"link-out-abs":    outside + "/secret.txt",
		"link-passwd":     "/etc/passwd",
		"link-proc":       "/proc/self/root/etc/passwd",
		"dirlink-in":      "sub",
		"dirlink-out":     outside,
		"dirlink-out-rel": "../outside",
		"dirlink-root":    "/",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mkfifo(root+"/fifo", 0o644); err != nil {
		t.Fatal(os.NewSyscallError("mkfifo", err))
	}
	for _, name := range []string{root + "/noread.txt", root + "/noread-dir"} {
		if err := os.Chmod(name, 0); err != nil {
			t.Fatal(err)
		}
	}
	// Let TempDir's cleanup remove what is inside.
	t.Cleanup(func() { _ = os.Chmod(root+"/noread-dir", 0o755) })
	return root, outside
}

// rootFetch serves raw from r the way the file server does: CleanPath, Open,
// a directory's index.html when the path ends with '/', 301 for a
// directory without the slash, 404 for a file with one.
func rootFetch(r *Root, raw string) (status int, body string, err error) {
	rel, dir, perr := CleanPath([]byte(raw))
	if perr != nil {
		return perr.Status, "", perr
	}
	fd, st, err := r.Open(rel)
	if err != nil {
		var pe *PathError
		if !errors.As(err, &pe) {
			return 0, "", err
		}
		return pe.Status, "", err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		_ = unix.Close(fd)
		if !dir {
			return 301, "", nil
		}
		index := "index.html"
		if rel != "" {
			index = rel + "/index.html"
		}
		if fd, _, err = r.Open(index); err != nil {
			var pe *PathError
			if !errors.As(err, &pe) {
				return 0, "", err
			}
			return pe.Status, "", err
		}
	} else if dir {
		_ = unix.Close(fd)
		return 404, "", errors.New("a file asked for as a directory")
	}
	defer func() { _ = unix.Close(fd) }()
	var b []byte
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fd, buf)
		if err != nil {
			return 0, "", os.NewSyscallError("read", err)
		}
		if n == 0 {
			return 200, string(b), nil
		}
		b = append(b, buf[:n]...)
	}
}

// asUnprivileged runs fn with the file permission checks of an
// unprivileged user. It runs fn as is when the test does not run as root.
// As root, where EACCES never happens, it runs fn on a goroutine locked to its own thread
// whose filesystem uid is set to nobody's (setfsuid(2) is per thread and
// drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from it); the thread is
// never unlocked, so it exits with the goroutine and no other code runs on
// it. dirfd and unreadable name a file the check must fail to open; when it
// opens anyway (a kernel or sandbox that keeps the capabilities) the test is
// skipped, as there is then no way to get EACCES here.
func asUnprivileged(t *testing.T, dirfd int, unreadable string, fn func()) {
	t.Helper()
	if unix.Geteuid() != 0 {
		fn()
		return
	}
	const nobody = 65534
	done := make(chan string)
	go func() {
		runtime.LockOSThread() // never unlocked: see above
		if _, err := unix.SetfsuidRetUid(nobody); err != nil {
			done <- os.NewSyscallError("setfsuid", err).Error()
			return
		}
		if cur, _ := unix.SetfsuidRetUid(-1); cur != nobody {
			done <- "setfsuid did not change the filesystem uid"
			return
		}
		if fd, err := unix.Openat(dirfd, unreadable, unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
			_ = unix.Close(fd)
			done <- "a mode 000 file still opens with fsuid nobody"
			return
		}
		fn()
		done <- ""
	}()
	if why := <-done; why != "" {
		testenv.Skip(t, "cannot test permission errors as root: %s", why)
	}
}

func TestRootOpen(t *testing.T) {
	root, _ := makeRootTree(t)
	roots := map[RootOptions]*Root{}
	for _, opts := range []RootOptions{{}, {FollowSymlinks: true}, {AllowDotfiles: true}, {FollowSymlinks: true, AllowDotfiles: true}} {
		r, err := OpenRoot(root, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		roots[opts] = r
	}
	dirfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(os.NewSyscallError("open", err))
	}
	t.Cleanup(func() { _ = unix.Close(dirfd) })
	passwd, _ := os.ReadFile("/etc/passwd")

	for _, tt := range rootTests {
		t.Run(tt.name, func(t *testing.T) {
			r := roots[RootOptions{FollowSymlinks: tt.follow, AllowDotfiles: tt.dotfiles}]
			var status int
			var body string
			var err error
			if tt.unpriv {
				asUnprivileged(t, dirfd, "noread.txt", func() { status, body, err = rootFetch(r, tt.raw) })
			} else {
				status, body, err = rootFetch(r, tt.raw)
			}
			if status == 0 {
				t.Fatalf("rootFetch(%q): %v", tt.raw, err)
			}
			if strings.Contains(body, outsideSecret) || (len(passwd) > 0 && body == string(passwd)) {
				t.Fatalf("rootFetch(%q) served a file from outside the root: %q", tt.raw, body)
			}
			if status != tt.wantStatus || body != tt.wantBody {
				t.Errorf("rootFetch(%q) = %d, %q (%v); want %d, %q", tt.raw, status, body, err, tt.wantStatus, tt.wantBody)
			}
			if status != 200 && status != 301 && err == nil {
				t.Errorf("rootFetch(%q) = %d without an error", tt.raw, status)
			}
		})
	}
}

func TestRootOpenErrors(t *testing.T) {
	root, _ := makeRootTree(t)
	r, err := OpenRoot(root, RootOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	tests := []struct {
		name       string
		rel        string
		wantStatus int
		wantErrno  error // nil: no system call error
	}{
		{"missing", "nope", 404, unix.ENOENT},
		{"not a directory", "hello.txt/x", 404, unix.ENOTDIR},
		{"symlink", "link-in", 404, unix.ELOOP},
		{"name too long", strings.Repeat("n", 256), 414, unix.ENAMETOOLONG},
		{"dotfile", ".env", 404, nil},
		{"FIFO", "fifo", 404, nil},
		{"absolute", "/etc/passwd", 400, nil},
		{"dot dot", "../outside/secret.txt", 400, nil},
		{"dot", "./hello.txt", 400, nil},
		{"empty segment", "sub//index.html", 400, nil},
		{"trailing slash", "sub/", 400, nil},
		{"NUL", "hello.txt\x00", 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fd, _, err := r.Open(tt.rel)
			if err == nil {
				_ = unix.Close(fd)
				t.Fatalf("Open(%q) = fd %d, nil; want status %d", tt.rel, fd, tt.wantStatus)
			}
			var pe *PathError
			if !errors.As(err, &pe) {
				t.Fatalf("Open(%q) error %v (%T), want a *PathError", tt.rel, err, err)
			}
			if pe.Status != tt.wantStatus || fd != -1 {
				t.Errorf("Open(%q) = fd %d, status %d (%v); want -1, %d", tt.rel, fd, pe.Status, err, tt.wantStatus)
			}
			if tt.wantErrno != nil && !errors.Is(err, tt.wantErrno) {
				t.Errorf("Open(%q) error %v, want it to wrap %v", tt.rel, err, tt.wantErrno)
			}
			if tt.wantErrno != nil && !strings.Contains(err.Error(), "openat2") {
				t.Errorf("Open(%q) error %q does not name openat2", tt.rel, err)
			}
		})
	}
}

func TestRootCloexec(t *testing.T) {
	root, _ := makeRootTree(t)
	r, err := OpenRoot(root, RootOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	fd, _, err := r.Open("hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Close(fd) }()
	for _, tt := range []struct {
		name string
		fd   int
	}{{"root", r.fd}, {"file", fd}} {
		flags, err := unix.FcntlInt(uintptr(tt.fd), unix.F_GETFD, 0)
		if err != nil {
			t.Fatal(os.NewSyscallError("fcntl", err))
		}
		if flags&unix.FD_CLOEXEC == 0 {
			t.Errorf("%s fd flags %#x, want FD_CLOEXEC", tt.name, flags)
		}
	}
}

func TestOpenRoot(t *testing.T) {
	root, _ := makeRootTree(t)
	base := filepath.Dir(root)
	if err := os.Symlink(root, base+"/rootlink"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		dir       string
		wantErrno error // nil: OpenRoot succeeds
	}{
		{"directory", root, nil},
		{"symlink to a directory", base + "/rootlink", nil},
		{"subdirectory", root + "/sub", nil},
		{"missing", base + "/missing", unix.ENOENT},
		{"file", root + "/hello.txt", unix.ENOTDIR},
		{"FIFO", root + "/fifo", unix.ENOTDIR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := OpenRoot(tt.dir, RootOptions{})
			if tt.wantErrno == nil {
				if err != nil {
					t.Fatalf("OpenRoot(%q) error %v, want nil", tt.dir, err)
				}
				if err := r.Close(); err != nil {
					t.Errorf("Close() = %v, want nil", err)
				}
				if err := r.Close(); !errors.Is(err, os.ErrClosed) {
					t.Errorf("second Close() = %v, want os.ErrClosed", err)
				}
				return
			}
			if err == nil {
				_ = r.Close()
				t.Fatalf("OpenRoot(%q) = nil error, want %v", tt.dir, tt.wantErrno)
			}
			if !errors.Is(err, tt.wantErrno) || !strings.Contains(err.Error(), tt.dir) || !strings.Contains(err.Error(), "open") {
				t.Errorf("OpenRoot(%q) error %q, want one naming the path and open, wrapping %v", tt.dir, err, tt.wantErrno)
			}
		})
	}
}

// FuzzCleanPath checks that whatever CleanPath accepts is a plain relative
// path, and that Root.Open, with and without FollowSymlinks and
// AllowDotfiles, never opens anything outside a root full of escaping
// symlinks: not the secret file next to the root, nor the directory it is
// in, nor /etc/passwd, nor anything whose /proc/self/fd link is not under
// the root.
func FuzzCleanPath(f *testing.F) {
	for _, tt := range cleanPathTests {
		f.Add([]byte(tt.raw))
	}
	for _, tt := range rootTests {
		f.Add([]byte(tt.raw))
	}
	for _, s := range []string{
		"/link-out/", "/dirlink-out/../outside/secret.txt", "/dirlink-out-rel/secret.txt",
		"/sub/%2e%2e/%2e%2e/outside/secret.txt", "/%2e%2e%2foutside%2fsecret.txt",
		"/..%2f..%2fetc%2fpasswd", "/%2e%2e%5csecret.txt", "/dirlink-root/etc/passwd",
	} {
		f.Add([]byte(s))
	}

	root, outside := makeRootTree(f)
	type devIno struct{ dev, ino uint64 }
	forbidden := map[devIno]string{}
	for _, name := range []string{outside + "/secret.txt", outside, filepath.Dir(root), "/etc/passwd", "/etc", "/"} {
		var st unix.Stat_t
		if err := unix.Stat(name, &st); err == nil {
			forbidden[devIno{st.Dev, st.Ino}] = name
		}
	}
	var roots []*Root
	for _, opts := range []RootOptions{{}, {FollowSymlinks: true}, {FollowSymlinks: true, AllowDotfiles: true}} {
		r, err := OpenRoot(root, opts)
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { _ = r.Close() })
		roots = append(roots, r)
	}

	f.Fuzz(func(t *testing.T, raw []byte) {
		rel, dir, perr := CleanPath(raw)
		if perr != nil {
			if perr.Status != 400 || rel != "" || dir {
				t.Fatalf("CleanPath(%q) = %q, %v, %v; a refusal must be \"\", false, 400", raw, rel, dir, perr)
			}
			return
		}
		switch {
		case !utf8.ValidString(rel):
			t.Fatalf("CleanPath(%q) = %q: invalid UTF-8", raw, rel)
		case strings.ContainsAny(rel, "\x00\\"):
			t.Fatalf("CleanPath(%q) = %q: NUL or backslash", raw, rel)
		case strings.HasPrefix(rel, "/") || strings.HasSuffix(rel, "/"):
			t.Fatalf("CleanPath(%q) = %q: leading or trailing slash", raw, rel)
		case dir != (raw[len(raw)-1] == '/'):
			t.Fatalf("CleanPath(%q) dir = %v", raw, dir)
		}
		for _, c := range []byte(rel) {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("CleanPath(%q) = %q: control byte %#x", raw, rel, c)
			}
		}
		if rel != "" {
			for _, seg := range strings.Split(rel, "/") {
				if seg == "" || seg == "." || seg == ".." {
					t.Fatalf("CleanPath(%q) = %q: segment %q", raw, rel, seg)
				}
			}
		}
		for _, r := range roots {
			fd, st, err := r.Open(rel)
			if err != nil {
				var pe *PathError
				if !errors.As(err, &pe) || pe.Status >= 500 {
					t.Fatalf("Open(%q) error %v", rel, err)
				}
				continue
			}
			link, lerr := os.Readlink("/proc/self/fd/" + itoa(fd))
			_ = unix.Close(fd)
			if name, bad := forbidden[devIno{st.Dev, st.Ino}]; bad {
				t.Fatalf("Open(%q) with %+v opened %s, outside the root", rel, r.opts, name)
			}
			if lerr != nil {
				t.Fatal(lerr)
			}
			if link != root && !strings.HasPrefix(link, root+"/") {
				t.Fatalf("Open(%q) with %+v opened %s, outside the root %s", rel, r.opts, link, root)
			}
		}
	})
}
