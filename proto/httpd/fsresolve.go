package httpd

import (
	"fmt"
	"os"
	"strconv"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// Resolving a request path to a file under a served directory happens in two
// steps, so that the security of the second never depends on the first:
//
//  1. CleanPath checks the raw request path and decodes it. It refuses
//     (400) everything that is not a plain sequence of names: malformed or
//     dangerous escapes, "." and ".." segments, empty segments, NUL and other
//     controls, backslashes, invalid UTF-8. It does not "clean" a path into
//     another one: a path that would need cleaning is refused.
//  2. Root.Open opens the result with openat2(2) relative to the root's
//     directory fd with RESOLVE_BENEATH, so the kernel itself refuses any
//     resolution (a ".." or a symlink) that leaves the root, whatever step 1
//     let through, and refuses symlinks altogether unless FollowSymlinks.
//     It also applies the dotfile rule, which depends on RootOptions.

// PathError is a request path that is refused, or that cannot be opened, and
// the status to answer it with. The errors CleanPath returns are shared
// values: compare them by Status, do not modify them.
type PathError struct {
	// Status is the HTTP status for the response: 400 for a path refused by
	// CleanPath, 403, 404, 414 or 500 from Root.Open.
	Status int
	// Reason says why, in a few words, for a log line. It does not contain
	// the path; it is safe to send to the client, though a plain status text
	// gives away less.
	Reason string
	// Err is the system call error behind a Root.Open failure (an
	// *os.SyscallError wrapping the errno), nil for a refusal of the path
	// itself.
	Err error
}

// Error returns "httpd: path: <status> <reason>[: <errno>]".
func (e *PathError) Error() string {
	s := "httpd: path: " + strconv.Itoa(e.Status) + " " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns Err, so errors.Is(err, unix.ENOENT) works on Open's errors.
func (e *PathError) Unwrap() error { return e.Err }

// The refusals of CleanPath and Root.Open's own checks: shared, so a refusal
// does not allocate.
var (
	errPathNoSlash   = &PathError{Status: 400, Reason: "path does not start with /"}
	errPathEscape    = &PathError{Status: 400, Reason: "malformed percent-escape"}
	errPathEncSlash  = &PathError{Status: 400, Reason: "encoded slash"}
	errPathBackslash = &PathError{Status: 400, Reason: "backslash"}
	errPathNUL       = &PathError{Status: 400, Reason: "NUL byte"}
	errPathControl   = &PathError{Status: 400, Reason: "control character"}
	errPathUTF8      = &PathError{Status: 400, Reason: "invalid UTF-8"}
	errPathDot       = &PathError{Status: 400, Reason: "dot segment"}
	errPathEmpty     = &PathError{Status: 400, Reason: "empty segment"}
	errPathRel       = &PathError{Status: 400, Reason: "not a relative path from CleanPath"}
	errPathDotfile   = &PathError{Status: 404, Reason: "dotfile"}
	errPathNotFile   = &PathError{Status: 404, Reason: "not a regular file or directory"}
)

// CleanPath checks and decodes the raw request path (Ctx.RawPath: still
// percent-encoded, without the query, starting with '/') and returns the
// path to pass to Root.Open:
//
//   - rel is the decoded path without its leading slash and without a
//     trailing one: "" for "/", "a/b.txt" for "/a/b.txt", "dir" for
//     "/dir/". It is non-empty names separated by single slashes, none of
//     them "." or "..", valid UTF-8 without controls, NUL or backslash.
//   - dir reports that the raw path ended with '/': the client asked for a
//     directory. The caller serves the directory's index when Open finds a
//     directory and dir is true, redirects "/dir" to "/dir/" when it finds
//     a directory and dir is false, and answers 404 when it finds a file
//     and dir is true ("/file.txt/").
//
// A refused path gives a nil rel and an err with Status 400, for:
//
//   - a path that does not start with '/' ("", "*", "a/b");
//   - a malformed escape ("%", "%2", "%zz");
//   - an encoded slash ("%2f", "%2F") or a backslash, raw or "%5c": they
//     would make one name look like two, or two like one, to whatever
//     interprets the path next;
//   - NUL (raw or "%00") and the other control bytes (0x00-0x1f, 0x7f);
//   - decoded bytes that are not valid UTF-8, which includes the overlong
//     encodings of '.' and '/' ("%c0%ae", "%e0%80%ae", "%c0%af");
//   - a "." or ".." segment, raw or encoded ("%2e%2e"): refused, not
//     resolved, so no path can even name a place above the root;
//   - an empty segment: "//etc/passwd" and "/a//b" are 400, not collapsed
//     into "/etc/passwd" and "/a/b" (only the empty name after a trailing
//     slash is allowed: it is the dir indication).
//
// A segment containing dots but other characters too ("a..b", "...") is a
// name like any other; the kernel only gives meaning to "." and ".." as whole
// names. Dotfiles (a segment starting with '.') are accepted here and refused
// by Root.Open, which knows RootOptions.AllowDotfiles. Percent-decoding is
// done once: "%252e%252e" is the name "%2e%2e", not "..".
//
// The errors are shared values; CleanPath allocates only rel.
func CleanPath(raw []byte) (rel string, dir bool, err *PathError) {
	if len(raw) == 0 || raw[0] != '/' {
		return "", false, errPathNoSlash
	}
	var buf [256]byte
	d := buf[:0]
	seg := 0 // where the current segment starts in d
	for i := 1; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case '/':
			if e := checkSegment(d[seg:]); e != nil {
				return "", false, e
			}
			d = append(d, '/')
			seg = len(d)
			continue
		case '%':
			if i+2 >= len(raw) {
				return "", false, errPathEscape
			}
			h, l := hexVal[raw[i+1]], hexVal[raw[i+2]]
			if h < 0 || l < 0 {
				return "", false, errPathEscape
			}
			c = byte(h<<4 | l)
			i += 2
			if c == '/' {
				return "", false, errPathEncSlash
			}
		}
		switch {
		case c == 0:
			return "", false, errPathNUL
		case c < 0x20 || c == 0x7f:
			return "", false, errPathControl
		case c == '\\':
			return "", false, errPathBackslash
		}
		d = append(d, c)
	}
	if raw[len(raw)-1] == '/' {
		// The last segment is the empty name after the trailing slash.
		dir = true
		if len(d) > 0 {
			d = d[:len(d)-1]
		}
	} else if e := checkSegment(d[seg:]); e != nil {
		return "", false, e
	}
	if !utf8.Valid(d) {
		return "", false, errPathUTF8
	}
	return string(d), dir, nil
}

// checkSegment refuses an empty, "." or ".." segment.
func checkSegment(s []byte) *PathError {
	switch {
	case len(s) == 0:
		return errPathEmpty
	case len(s) == 1 && s[0] == '.', len(s) == 2 && s[0] == '.' && s[1] == '.':
		return errPathDot
	}
	return nil
}

// RootOptions are the choices of a Root.
type RootOptions struct {
	// FollowSymlinks follows symbolic links that stay inside the root
	// (--follow-symlinks). Without it every symlink met while resolving a
	// path, at any position, gives 404.
	//
	// With it, a link is followed only as far as the kernel can see that the
	// resolution stays beneath the root (openat2 RESOLVE_BENEATH): a link
	// with an absolute target is refused even when the target is inside the
	// root, so is a relative one whose ".." climbs above the root at any
	// point, even if it comes back in ("../root/x"), while "sub/../x" is
	// followed. Magic links (/proc/PID/fd/N and the like) are always
	// refused. The dotfile rule applies to the names in the request, not to
	// link targets: a link "env" -> ".env" placed in the root serves .env.
	FollowSymlinks bool
	// AllowDotfiles serves names starting with '.' (".env", ".git/config");
	// without it they give 404, as if they did not exist.
	AllowDotfiles bool
}

// Root is a directory files are served from, held open as an O_PATH fd:
// every file is opened relative to it, so renaming or replacing the
// directory's path afterwards does not change what is served, and the
// kernel checks that each open stays beneath it.
//
// Open is safe for concurrent use; Close must not run concurrently with it.
//
// What RESOLVE_BENEATH cannot see: a mount point inside the root is
// crossed like a directory, and a hard link inside the root to a file
// elsewhere (on the same file system) is the file itself, so it is served.
// Who can create entries in the root can publish what they can link.
type Root struct {
	fd      int
	resolve uint64
	opts    RootOptions
}

// OpenRoot opens dir (which may be a symlink to a directory) as a Root. It
// fails when dir is not a directory, and when the kernel has no openat2(2)
// (Linux before 5.6) or does not know its RESOLVE flags: there is no
// equally safe way to open paths beneath a directory without it, so there
// is no fallback. The errors name dir and the failing system call.
func OpenRoot(dir string, opts RootOptions) (*Root, error) {
	var fd int
	var err error
	for {
		fd, err = unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("httpd: root %s: %w", dir, os.NewSyscallError("open", err))
	}
	return RootFromFD(fd, dir, opts)
}

// RootFromFD makes a Root of a directory fd opened elsewhere (O_PATH is
// enough): prefork's master opens --root and its workers inherit it, so a
// worker running as --user serves the tree whatever the permissions of the
// directories above it. The Root owns fd; name is for errors. It makes the
// checks OpenRoot makes, and closes fd when they fail.
func RootFromFD(fd int, name string, opts RootOptions) (*Root, error) {
	dir := name
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("httpd: root %s: %w", dir, os.NewSyscallError("fstat", err))
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("httpd: root %s: not a directory", dir)
	}
	r := &Root{fd: fd, opts: opts, resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
	if !opts.FollowSymlinks {
		r.resolve |= unix.RESOLVE_NO_SYMLINKS
	}
	// Probe openat2 with the very flags Open uses.
	pfd, err := unix.Openat2(fd, ".", &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: r.resolve,
	})
	if err != nil {
		_ = unix.Close(fd)
		if err == unix.ENOSYS {
			return nil, fmt.Errorf("httpd: root %s: openat2(2) is not available (Linux 5.6 or later is needed to serve files safely): %w",
				dir, os.NewSyscallError("openat2", err))
		}
		return nil, fmt.Errorf("httpd: root %s: %w", dir, os.NewSyscallError("openat2", err))
	}
	_ = unix.Close(pfd)
	return r, nil
}

// Close closes the root's directory fd. Files already opened stay usable.
func (r *Root) Close() error {
	if r.fd < 0 {
		return os.ErrClosed
	}
	fd := r.fd
	r.fd = -1
	return os.NewSyscallError("close", unix.Close(fd))
}

// openAttempts bounds the retries of an openat2 that returned EAGAIN: with
// RESOLVE_BENEATH the kernel says so when a concurrent rename or mount kept
// it from proving a ".." stayed beneath the root.
const openAttempts = 4

// Open opens rel, a path returned by CleanPath ("" for the root itself),
// beneath the root, read-only, and returns the fd (O_CLOEXEC, which the
// caller closes) and its fstat. Only regular files and directories are
// returned.
//
// The file is opened O_RDONLY|O_CLOEXEC|O_NOCTTY|O_NONBLOCK with openat2
// RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS, plus RESOLVE_NO_SYMLINKS unless
// FollowSymlinks. O_NONBLOCK is there for FIFOs: opening one for reading
// would otherwise block until a writer comes, on the loop's goroutine; it
// has no effect on reading regular files. Something else than a regular file
// or a directory (a FIFO, a socket, a device node) is closed again and
// gives 404, as nginx does.
//
// A failure is a *PathError (use errors.As) with the status to answer and,
// for a system call failure, Err wrapping the errno (errors.Is works):
//
//   - 400: rel is not a path CleanPath could have returned (a leading '/',
//     an empty, "." or ".." segment, a NUL);
//   - 404: a dotfile segment without AllowDotfiles; ENOENT, ENOTDIR (a
//     missing name, or "file.txt/x"); EXDEV (the resolution would leave the
//     root: an escaping or absolute symlink); ELOOP (a symlink without
//     FollowSymlinks, or too many); ENXIO, ENODEV (a device or socket);
//     a file that is not regular or a directory;
//   - 403: EACCES, EPERM (no permission to search a directory or read the
//     file);
//   - 414: ENAMETOOLONG (a name longer than NAME_MAX or a path longer than
//     PATH_MAX);
//   - 500: anything else (EMFILE, EIO, ...), which deserves a log line.
func (r *Root) Open(rel string) (fd int, st unix.Stat_t, err error) {
	if e := r.checkRel(rel); e != nil {
		return -1, st, e
	}
	name := rel
	if name == "" {
		name = "."
	}
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK,
		Resolve: r.resolve,
	}
	for again := 0; ; {
		fd, err = unix.Openat2(r.fd, name, &how)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			if again++; again < openAttempts {
				continue
			}
		}
		break
	}
	if err != nil {
		return -1, st, openError(err)
	}
	if err := unix.Fstat(fd, &st); err != nil {
		_ = unix.Close(fd)
		return -1, st, &PathError{Status: 500, Reason: "fstat failed", Err: os.NewSyscallError("fstat", err)}
	}
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFREG && t != unix.S_IFDIR {
		_ = unix.Close(fd)
		return -1, st, errPathNotFile
	}
	return fd, st, nil
}

// checkRel refuses what CleanPath would not have returned, and dotfiles
// unless they are allowed.
func (r *Root) checkRel(rel string) *PathError {
	if rel == "" {
		return nil
	}
	start := 0
	for i := 0; i <= len(rel); i++ {
		if i < len(rel) && rel[i] != '/' {
			if rel[i] == 0 {
				return errPathRel
			}
			continue
		}
		seg := rel[start:i]
		switch {
		case seg == "", seg == ".", seg == "..":
			return errPathRel
		case seg[0] == '.' && !r.opts.AllowDotfiles:
			return errPathDotfile
		}
		start = i + 1
	}
	return nil
}

// Open's errors for the errnos a request can cause, shared so that a flood
// of 404s does not allocate.
var (
	errOpenENOENT       = &PathError{Status: 404, Reason: "not found", Err: os.NewSyscallError("openat2", unix.ENOENT)}
	errOpenENOTDIR      = &PathError{Status: 404, Reason: "not found", Err: os.NewSyscallError("openat2", unix.ENOTDIR)}
	errOpenEXDEV        = &PathError{Status: 404, Reason: "resolution leaves the root", Err: os.NewSyscallError("openat2", unix.EXDEV)}
	errOpenELOOP        = &PathError{Status: 404, Reason: "symlink refused", Err: os.NewSyscallError("openat2", unix.ELOOP)}
	errOpenEACCES       = &PathError{Status: 403, Reason: "permission denied", Err: os.NewSyscallError("openat2", unix.EACCES)}
	errOpenEPERM        = &PathError{Status: 403, Reason: "permission denied", Err: os.NewSyscallError("openat2", unix.EPERM)}
	errOpenENAMETOOLONG = &PathError{Status: 414, Reason: "name too long", Err: os.NewSyscallError("openat2", unix.ENAMETOOLONG)}
)

// openError maps an openat2 errno to a PathError.
func openError(err error) *PathError {
	switch err {
	case unix.ENOENT:
		return errOpenENOENT
	case unix.ENOTDIR:
		return errOpenENOTDIR
	case unix.EXDEV:
		return errOpenEXDEV
	case unix.ELOOP:
		return errOpenELOOP
	case unix.EACCES:
		return errOpenEACCES
	case unix.EPERM:
		return errOpenEPERM
	case unix.ENAMETOOLONG:
		return errOpenENAMETOOLONG
	case unix.ENXIO, unix.ENODEV:
		return &PathError{Status: 404, Reason: "not a regular file or directory", Err: os.NewSyscallError("openat2", err)}
	}
	return &PathError{Status: 500, Reason: "open failed", Err: os.NewSyscallError("openat2", err)}
}
