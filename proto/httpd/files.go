package httpd

import (
	"errors"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// FileOptions configure FileServer.
type FileOptions struct {
	// Prefix is stripped from the request path before it is looked up
	// (mount the server under "/static/", say); a path without it is 404.
	Prefix string
	// CacheControl, when set, is sent with every file ("public, max-age=3600").
	CacheControl string
	// CacheValid is how long an open file and its stat are trusted before
	// they are checked again (nginx's open_file_cache_valid). Default 1 s.
	CacheValid time.Duration
	// CacheSize bounds the open files kept. Default 1024.
	CacheSize int
	// Index is the file served for a directory. Default "index.html".
	Index string
	// Autoindex lists a directory without an index file (nginx's
	// autoindex): its entries, dotfiles left out, as HTML links.
	Autoindex bool
}

// FileServer serves the files under root (see OpenRoot) with the native
// API: GET and HEAD of a regular file answer 200 with Content-Length,
// Content-Type from the extension, Last-Modified, a strong ETag and
// Accept-Ranges; If-None-Match and If-Modified-Since give 304; one
// "Range: bytes=" range gives 206 (or 416; several ranges get the whole
// file), honouring If-Range. A directory is served by its index file when
// its path ends with '/', redirected (301) to that path otherwise; without an
// index it is 404 (no listing). A sibling file.br or file.gz is served,
// with Content-Encoding and Vary: Accept-Encoding, to a client whose
// Accept-Encoding takes it. Other methods get 405 with Allow: GET, HEAD.
// Paths that could leave the root, and dotfiles, are refused (CleanPath,
// Root.Open).
//
// Bodies go out with sendfile(2) from the loop; files up to 16 KiB are kept
// in memory with their descriptor and leave with the head, in one write.
// Open descriptors and their stat (and small files' bytes) are cached for
// CacheValid, so a file changed on disk may be served as it was for up to
// that long (its new bytes, since the descriptor is the same inode, but the
// old length and validators until the check; a body that would come out
// short closes the connection instead).
func FileServer(root *Root, opts FileOptions) Handler {
	if opts.CacheValid <= 0 {
		opts.CacheValid = time.Second
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = 1024
	}
	if opts.Index == "" {
		opts.Index = "index.html"
	}
	fs := &fileServer{opts: opts, cache: newFileCache(root, opts.CacheSize, opts.CacheValid)}
	if opts.CacheControl != "" {
		fs.cacheControl = MustField("Cache-Control", opts.CacheControl)
		fs.hasCacheControl = true
	}
	return fs
}

type fileServer struct {
	opts            FileOptions
	cache           *fileCache
	cacheControl    Field
	hasCacheControl bool
}

var (
	allowGetHead   = MustField("Allow", "GET, HEAD")
	acceptRanges   = MustField("Accept-Ranges", "bytes")
	varyEncoding   = MustField("Vary", "Accept-Encoding")
	encodingBr     = MustField("Content-Encoding", "br")
	encodingGzip   = MustField("Content-Encoding", "gzip")
	textPlainUTF8  = MustField("Content-Type", "text/plain; charset=utf-8")
	errorBodies    = map[int]string{}
	errorBodyOrder = []int{400, 403, 404, 405, 414, 416, 500}
)

func init() {
	for _, code := range errorBodyOrder {
		errorBodies[code] = strconv.Itoa(code) + " " + http.StatusText(code) + "\n"
	}
}

func (fs *fileServer) fail(c *Ctx, code int) {
	c.SetStatus(code)
	c.AddField(textPlainUTF8)
	_, _ = c.WriteString(errorBodies[code])
}

func (fs *fileServer) Serve(c *Ctx) {
	m := c.Method()
	if string(m) != "GET" && string(m) != "HEAD" {
		c.AddField(allowGetHead)
		fs.fail(c, 405)
		return
	}
	raw := c.RawPath()
	if fs.opts.Prefix != "" {
		if !strings.HasPrefix(string(raw), fs.opts.Prefix) {
			fs.fail(c, 404)
			return
		}
		raw = raw[len(fs.opts.Prefix)-1:] // keep the '/'
		if len(raw) == 0 || raw[0] != '/' {
			fs.fail(c, 404)
			return
		}
	}
	rel, dir, perr := CleanPath(raw)
	if perr != nil {
		fs.fail(c, perr.Status)
		return
	}
	now := time.Now()
	e := fs.cache.get(rel, now)
	if e.status != 0 {
		fs.fail(c, e.status)
		return
	}
	if e.isDir {
		if !dir {
			// "/docs" → "/docs/", with the query.
			loc := string(c.RawPath()) + "/"
			if q := c.QueryString(); q != nil {
				loc += "?" + string(q)
			}
			if c.SetHeader("Location", loc) != nil {
				fs.fail(c, 400)
				return
			}
			c.SetStatus(301)
			return
		}
		idx := fs.opts.Index
		if rel != "" {
			idx = rel + "/" + idx
		}
		if ie := fs.cache.get(idx, now); ie.status != 0 || ie.isDir {
			if fs.opts.Autoindex && ie.status == 404 {
				fs.listing(c, e)
				return
			}
			fs.fail(c, 404)
			return
		} else {
			e = ie
		}
		rel = idx
	} else if dir {
		fs.fail(c, 404) // "/file.txt/"
		return
	}
	body := e
	if e.siblings != 0 {
		c.AddField(varyEncoding)
		if enc := acceptedEncoding(c.Header("Accept-Encoding"), e.siblings); enc != 0 {
			name := rel + ".gz"
			if enc == encBr {
				name = rel + ".br"
			}
			if z := fs.cache.get(name, now); z.status == 0 && !z.isDir {
				body = z
				if enc == encBr {
					c.AddField(encodingBr)
				} else {
					c.AddField(encodingGzip)
				}
			}
		}
	}
	fs.serveFile(c, e, body)
}

// serveFile answers with body's bytes, typed as e (the file asked for: body
// is it, or its precompressed sibling).
func (fs *fileServer) serveFile(c *Ctx, e, body *fileEntry) {
	if body == e {
		c.AddField(e.head) // checked once, when the entry was made
	} else {
		_ = c.SetContentType(e.ctype)
		_ = c.SetHeader("Last-Modified", body.lastMod)
		_ = c.SetHeader("ETag", body.etag)
		c.AddField(acceptRanges)
	}
	if fs.hasCacheControl {
		c.AddField(fs.cacheControl)
	}
	if notModified(c, body) {
		c.DelHeader("Content-Type")
		c.SetStatus(304)
		return
	}
	size := body.size
	off, n := int64(0), size
	if rng := c.Header("Range"); rng != nil && string(c.Method()) == "GET" && ifRangeHolds(c.Header("If-Range"), body) {
		start, end, status := parseRange(rng, size)
		switch status {
		case 206:
			off, n = start, end-start+1
			c.SetStatus(206)
			_ = c.SetHeader("Content-Range", "bytes "+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(end, 10)+"/"+strconv.FormatInt(size, 10))
		case 416:
			_ = c.SetHeader("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
			fs.fail(c, 416)
			return
		}
	}
	if body.data != nil {
		_, _ = c.Write(body.data[off : off+n]) // small: kept in memory, no read per request
		return
	}
	c.SendFile(body.fd, off, n)
}

// notModified applies If-None-Match, or when absent If-Modified-Since
// (RFC 9110 §13.2.2).
func notModified(c *Ctx, e *fileEntry) bool {
	if inm := c.Header("If-None-Match"); inm != nil {
		return etagListMatches(inm, e.etag)
	}
	if ims := c.Header("If-Modified-Since"); ims != nil {
		t, err := http.ParseTime(string(ims))
		return err == nil && e.mtime/1e9 <= t.Unix()
	}
	return false
}

// etagListMatches is the weak comparison of If-None-Match (RFC 9110
// §13.1.2): "*", or a list of entity-tags one of which equals etag once "W/"
// is dropped. A malformed value matches nothing: the full response is always
// safe, a 304 for a tag the client did not send is not.
func etagListMatches(list []byte, etag string) bool {
	if string(trimOWS(list)) == "*" {
		return true
	}
	match := false
	for i := 0; ; {
		// OWS and empty list elements (§5.6.1).
		for i < len(list) && (list[i] == ' ' || list[i] == '\t' || list[i] == ',') {
			i++
		}
		if i == len(list) {
			return match
		}
		if i+1 < len(list) && list[i] == 'W' && list[i+1] == '/' {
			i += 2
		}
		if i == len(list) || list[i] != '"' {
			return false
		}
		tag := i
		for i++; i < len(list) && list[i] != '"'; i++ {
			if c := list[i]; c < 0x21 || c == 0x7f { // etagc: %x21 / %x23-7E / obs-text
				return false
			}
		}
		if i == len(list) {
			return false
		}
		i++
		match = match || string(list[tag:i]) == etag
		for i < len(list) && (list[i] == ' ' || list[i] == '\t') {
			i++
		}
		if i < len(list) && list[i] != ',' {
			return false
		}
	}
}

// ifRangeHolds: no If-Range, or one naming this version (a strong ETag
// equal to it, or the exact Last-Modified date).
func ifRangeHolds(v []byte, e *fileEntry) bool {
	if v == nil {
		return true
	}
	s := strings.TrimSpace(string(v))
	if strings.HasPrefix(s, `"`) {
		return s == e.etag
	}
	if strings.HasPrefix(s, "W/") {
		return false // a weak validator never allows a range
	}
	return s == e.lastMod
}

// parseRange reads a Range header for a file of size bytes: one satisfiable
// "bytes=" range gives 206 and its first and last byte; an unsatisfiable one
// 416; anything else (several ranges, another unit, a malformed value) 200,
// the whole file, as RFC 9110 §14.2 lets a server ignore the header.
func parseRange(v []byte, size int64) (start, end int64, status int) {
	spec, ok := strings.CutPrefix(string(trimOWS(v)), "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, 0, 200
	}
	first, last, ok := strings.Cut(string(trimOWS([]byte(spec))), "-")
	if !ok {
		return 0, 0, 200
	}
	// Positions are 1*DIGIT: no sign (strconv would take "+5").
	switch {
	case first == "": // suffix: the last N bytes
		n, ok := parseLength([]byte(last))
		if !ok {
			return 0, 0, 200
		}
		if n == 0 || size == 0 {
			return 0, 0, 416
		}
		return max(size-n, 0), size - 1, 206
	default:
		a, ok := parseLength([]byte(first))
		if !ok {
			return 0, 0, 200
		}
		b := size - 1
		if last != "" {
			if b, ok = parseLength([]byte(last)); !ok || b < a {
				return 0, 0, 200
			}
			b = min(b, size-1)
		}
		if a >= size {
			return 0, 0, 416
		}
		return a, b, 206
	}
}

// Precompressed siblings.
const (
	encGzip = 1 << iota
	encBr
)

// acceptedEncoding picks the sibling to send: br before gzip, when the
// client's Accept-Encoding takes it (a q of 0, "q" in any case, refuses; "*"
// stands only for the codings not listed, RFC 9110 §12.5.3).
func acceptedEncoding(ae []byte, have int) int {
	if ae == nil {
		return 0
	}
	listed, accepted, refused := 0, 0, 0 // codings named, named with a weight above 0, named with q=0
	star := 0                            // "*": 0 absent, 1 accepted, -1 refused
	for _, part := range strings.Split(string(ae), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		ok := true
		if q, found := strings.CutPrefix(weightSpace.Replace(strings.ToLower(params)), "q="); found {
			if v, err := strconv.ParseFloat(q, 64); err == nil && v == 0 {
				ok = false
			}
		}
		bit := 0
		switch name {
		case "br":
			bit = encBr
		case "gzip":
			bit = encGzip
		case "*":
			if !ok {
				star = -1
			} else if star == 0 {
				star = 1
			}
		}
		listed |= bit
		if ok {
			accepted |= bit
		} else {
			refused |= bit
		}
	}
	// A coding named twice, once with q=0 ("br;q=0, br"): the refusal
	// stands, so a client that said no never gets it.
	accepted &^= refused
	if star == 1 {
		accepted |= (encBr | encGzip) &^ listed
	}
	accepted &= have
	if accepted&encBr != 0 {
		return encBr
	}
	return accepted & encGzip
}

var weightSpace = strings.NewReplacer(" ", "", "\t", "")

// fileEntry is a cached lookup: an open file and what the responses need
// of its stat, or the status to answer (404, 403...).
type fileEntry struct {
	status   int
	fd       int
	isDir    bool
	size     int64
	mtime    int64 // ns
	dev, ino uint64
	etag     string
	lastMod  string
	ctype    string
	siblings int    // encGzip|encBr: precompressed siblings exist
	data     []byte // the contents of a small file (up to smallFile), read once
	head     Field  // Content-Type, Last-Modified, ETag and Accept-Ranges, prepared
	checked  time.Time
}

// fileCache keeps open descriptors and their stat for valid, like nginx's
// open_file_cache; an entry older than that is checked against the file
// system again (reopened and compared) before it is used.
type fileCache struct {
	root  *Root
	m     map[string]*fileEntry
	max   int
	valid time.Duration
}

func newFileCache(root *Root, max int, valid time.Duration) *fileCache {
	return &fileCache{root: root, m: map[string]*fileEntry{}, max: max, valid: valid}
}

func (fc *fileCache) get(rel string, now time.Time) *fileEntry {
	e := fc.m[rel]
	if e != nil && now.Sub(e.checked) < fc.valid {
		return e
	}
	fresh := fc.open(rel, now)
	if e != nil {
		if e.status == 0 && fresh.status == 0 && e.dev == fresh.dev && e.ino == fresh.ino &&
			e.size == fresh.size && e.mtime == fresh.mtime {
			// Unchanged: keep the descriptor we have.
			_ = unix.Close(fresh.fd)
			e.checked = now
			e.siblings = fresh.siblings
			return e
		}
		fc.drop(rel, e)
	}
	if len(fc.m) >= fc.max {
		for k, old := range fc.m { // evict one, any
			fc.drop(k, old)
			break
		}
	}
	fc.m[rel] = fresh
	return fresh
}

func (fc *fileCache) drop(rel string, e *fileEntry) {
	if e.status == 0 {
		// Queued sendfiles hold descriptors of their own: closing is safe.
		_ = unix.Close(e.fd)
	}
	delete(fc.m, rel)
}

func (fc *fileCache) open(rel string, now time.Time) *fileEntry {
	e := &fileEntry{checked: now}
	fd, st, err := fc.root.Open(rel)
	if err != nil {
		e.status = 500
		var pe *PathError
		if errors.As(err, &pe) {
			e.status = pe.Status
		}
		return e
	}
	e.fd = fd
	e.isDir = st.Mode&unix.S_IFMT == unix.S_IFDIR
	if !e.isDir && st.Mode&unix.S_IFMT != unix.S_IFREG {
		_ = unix.Close(fd)
		e.status = 404 // a device, a fifo, a socket: never served
		return e
	}
	e.size = st.Size
	e.mtime = st.Mtim.Nano()
	e.dev, e.ino = uint64(st.Dev), st.Ino
	e.etag = `"` + strconv.FormatInt(e.mtime, 16) + "-" + strconv.FormatInt(e.size, 16) + `"`
	e.lastMod = time.Unix(0, e.mtime).UTC().Format(http.TimeFormat)
	e.ctype = ContentType(rel)
	if f, err := NewField("Content-Type", e.ctype); err == nil {
		e.head = Field{line: f.line + "Last-Modified: " + e.lastMod + "\r\nETag: " + e.etag + "\r\n" + acceptRanges.line}
	}
	if !e.isDir && e.size <= smallFile {
		// Small files are kept in memory with their descriptor: a request
		// costs no read, and head and body leave in one write.
		if data, ok := preadAppend(make([]byte, 0, e.size), fd, 0, e.size); ok {
			e.data = data
		}
	}
	if !e.isDir && !strings.HasSuffix(rel, ".gz") && !strings.HasSuffix(rel, ".br") {
		for _, sib := range [...]struct {
			ext string
			bit int
		}{{".gz", encGzip}, {".br", encBr}} {
			if sfd, sst, err := fc.root.Open(rel + sib.ext); err == nil {
				if sst.Mode&unix.S_IFMT == unix.S_IFREG {
					e.siblings |= sib.bit
				}
				_ = unix.Close(sfd)
			}
		}
	}
	return e
}

var textHTML = MustField("Content-Type", "text/html; charset=utf-8")

// listing answers a directory's entries as HTML (Autoindex): names escaped
// for HTML and the links for URLs, directories with a trailing slash,
// dotfiles left out, sorted by name. It reads the directory on the loop:
// meant for small trees.
func (fs *fileServer) listing(c *Ctx, dir *fileEntry) {
	fd, err := unix.FcntlInt(uintptr(dir.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		fs.fail(c, 500)
		return
	}
	f := os.NewFile(uintptr(fd), "dir")
	defer f.Close()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		fs.fail(c, 500)
		return
	}
	ents, err := f.ReadDir(-1)
	if err != nil {
		fs.fail(c, 500)
		return
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	path := html.EscapeString(string(c.Path()))
	c.AddField(textHTML)
	_, _ = c.WriteString("<!doctype html>\n<title>Index of " + path + "</title>\n<h1>Index of " + path + "</h1>\n<ul>\n")
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		if e.IsDir() {
			name += "/"
		}
		link := (&url.URL{Path: name}).EscapedPath()
		if strings.Contains(name, ":") {
			link = "./" + link // not read as a scheme
		}
		_, _ = c.WriteString(`<li><a href="` + html.EscapeString(link) + `">` + html.EscapeString(name) + "</a></li>\n")
	}
	_, _ = c.WriteString("</ul>\n")
}
