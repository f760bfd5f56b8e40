// # Routing
//
// Router dispatches a request to the Handler registered for its method and
// path. A pattern is a path of '/'-separated segments, each one of:
//
//   - a literal ("users"), matching that exact segment;
//   - a parameter "{name}", matching one whole, non-empty segment, whose
//     value Ctx.Param("name") returns;
//   - a catch-all "{name...}", only as the last segment, matching the rest
//     of the path, slashes included and possibly empty.
//
// So "/hello/{name}" matches "/hello/bob" but neither "/hello/" (the
// segment is empty) nor "/hello/a/b" (the rest must match exactly), and
// "/static/{file...}" matches "/static/", "/static/a" and "/static/a/b.css"
// but not "/static". A trailing slash is a segment like any other: "/a/"
// and "/a" are two routes, and there are no redirects between them. Paths
// are matched after percent-decoding (Ctx.Path), so "/hello/b%20b" gives
// name "b b" (and an encoded "%2F" separates segments like '/').
//
// When several patterns match a path, the most specific wins, whatever the
// order they were registered in: at each segment a literal beats a
// parameter, which beats a catch-all, the leftmost segment deciding first.
// A pattern matches a request when it matches the path and has a handler
// for the method: a HEAD request uses the GET handler when the pattern has
// no HEAD one (the server sends the response without its body), and a
// pattern registered for the method "" takes every method. When the most
// specific pattern lacks the method, a less specific one that has it
// serves the request. When no pattern matches the path the answer is 404;
// when some do but none takes the method, 405 with an Allow header listing
// the methods they take (HEAD with GET), in alphabetical order. OPTIONS is
// a method like any other.
package httpd

import (
	"fmt"
	"slices"
	"strings"
)

// Router is a Handler that dispatches each request to the handler
// registered for its method and path pattern; the package documentation
// (Routing) gives the matching rules. Matching, parameters and the 404 and
// 405 answers allocate nothing.
//
// Register every route before the server starts: Handle must not run
// concurrently with Serve. Once registration is done, a Router may serve
// several Servers (loops) at once, since Serve only reads it.
type Router struct {
	root     routeNode
	notFound Handler
	methods  []string // every method registered, by bit index in routeNode.mask
	sorted   []int    // indices into methods, alphabetical by method
}

// routeNode is the trie node for a sequence of segments. Its literal,
// parameter and catch-all children extend it by one segment (the catch-all
// by the rest of the path); its endpoints serve the paths that end there.
type routeNode struct {
	seg      string                // the literal segment leading here
	lits     []*routeNode          // literal children, sorted by seg
	litMap   map[string]*routeNode // lits by seg, when there are many
	param    *routeNode            // the {name} child
	catchAll *routeNode            // the {name...} child, a leaf

	eps   []routeEndpoint // by method, sorted
	any   *routeEndpoint  // the handler for every method (method "")
	mask  uint64          // the methods of eps (HEAD with GET), as Router.methods bits
	allow Field           // the Allow field of a 405 from this node alone
}

// routeEndpoint is one registered route.
type routeEndpoint struct {
	method  string
	pattern string
	h       Handler
	names   []string // the parameters' names, in path order
}

// routeLitMapMin is the number of literal children from which a node finds
// them with a map rather than a scan.
const routeLitMapMin = 8

// Prepared answers, so that a 404 or 405 allocates nothing. (The field is
// spelled out: MustField's tables are filled by an init function, after
// package variables.)
var (
	routeTextPlain      = Field{line: "Content-Type: text/plain; charset=utf-8\r\n"}
	routeNotFoundBody   = "404 page not found\n"
	routeNotAllowedBody = "405 method not allowed\n"
)

// NewRouter returns a Router without routes: it answers every request 404
// until routes are registered.
func NewRouter() *Router {
	return &Router{notFound: HandlerFunc(routeNotFound)}
}

func routeNotFound(c *Ctx) {
	c.SetStatus(404)
	c.AddField(routeTextPlain)
	_, _ = c.WriteString(routeNotFoundBody)
}

// NotFound replaces the handler of requests whose path no pattern matches
// (by default a 404 with a text/plain body "404 page not found"). The
// handler sets its own status.
func (r *Router) NotFound(h Handler) {
	if h == nil {
		panic("httpd: Router.NotFound(nil)")
	}
	r.notFound = h
}

// HandleFunc registers f for method and pattern, as Handle does.
func (r *Router) HandleFunc(method, pattern string, f func(*Ctx)) {
	if f == nil {
		panic(fmt.Sprintf("httpd: Router.HandleFunc(%q, %q): nil handler", method, pattern))
	}
	r.Handle(method, pattern, HandlerFunc(f))
}

// GET registers f for GET (and so for HEAD, unless HEAD has its own
// handler) and pattern.
func (r *Router) GET(pattern string, f func(*Ctx)) { r.HandleFunc("GET", pattern, f) }

// POST registers f for POST and pattern.
func (r *Router) POST(pattern string, f func(*Ctx)) { r.HandleFunc("POST", pattern, f) }

// PUT registers f for PUT and pattern.
func (r *Router) PUT(pattern string, f func(*Ctx)) { r.HandleFunc("PUT", pattern, f) }

// PATCH registers f for PATCH and pattern.
func (r *Router) PATCH(pattern string, f func(*Ctx)) { r.HandleFunc("PATCH", pattern, f) }

// DELETE registers f for DELETE and pattern.
func (r *Router) DELETE(pattern string, f func(*Ctx)) { r.HandleFunc("DELETE", pattern, f) }

// Handle registers h for requests with method whose path matches pattern
// (see Routing in the package documentation). Methods are case-sensitive
// tokens ("GET"); the method "" takes every method the pattern has no
// handler of its own for.
//
// A bad registration is a programming error, so Handle panics on: a method
// that is not a token; a nil handler; a pattern that does not start with
// '/'; a segment with '{' or '}' other than a whole "{name}" or
// "{name...}"; a name that is empty or not made of ASCII letters, digits
// and '_'; two parameters of one name; more than 8 parameters; a
// catch-all before the last segment; and a method and pattern registered
// already, or differing only in parameter names ("/a/{x}" and "/a/{y}").
func (r *Router) Handle(method, pattern string, h Handler) {
	fail := func(format string, args ...any) {
		panic(fmt.Sprintf("httpd: Router.Handle(%q, %q): ", method, pattern) + fmt.Sprintf(format, args...))
	}
	for i := 0; i < len(method); i++ {
		if !tchar[method[i]] {
			fail("the method is not a token")
		}
	}
	if h == nil {
		fail("nil handler")
	}
	if !strings.HasPrefix(pattern, "/") {
		fail("the pattern must start with '/'")
	}

	segs, names, err := parseRoutePattern(pattern)
	if err != "" {
		fail("%s", err)
	}
	n := &r.root
	for _, s := range segs {
		switch s.kind {
		case routeLiteral:
			n = n.literalChild(s.lit)
		case routeParam:
			if n.param == nil {
				n.param = &routeNode{}
			}
			n = n.param
		default:
			if n.catchAll == nil {
				n.catchAll = &routeNode{}
			}
			n = n.catchAll
		}
	}

	ep := routeEndpoint{method: method, pattern: pattern, h: h, names: names}
	if method == "" {
		if n.any != nil {
			fail("conflicts with the pattern %q registered for every method", n.any.pattern)
		}
		n.any = &ep
		return
	}
	i, found := slices.BinarySearchFunc(n.eps, method, func(e routeEndpoint, m string) int { return strings.Compare(e.method, m) })
	if found {
		fail("conflicts with %s %s, registered already", n.eps[i].method, n.eps[i].pattern)
	}
	n.eps = slices.Insert(n.eps, i, ep)
	n.mask |= r.methodBit(method)
	if method == "GET" {
		n.mask |= r.methodBit("HEAD")
	}
	n.allow = MustField("Allow", r.allowList(n.mask))
}

// Kinds of pattern segments.
const (
	routeLiteral = iota
	routeParam
	routeCatchAll
)

type routeSeg struct {
	kind int
	lit  string
}

// parseRoutePattern splits pattern, which starts with '/', into its segments and
// the names of its parameters; err says what is wrong with a bad one.
func parseRoutePattern(pattern string) (segs []routeSeg, names []string, err string) {
	parts := strings.Split(pattern[1:], "/")
	for i, seg := range parts {
		if !strings.ContainsAny(seg, "{}") {
			segs = append(segs, routeSeg{kind: routeLiteral, lit: seg})
			continue
		}
		if len(seg) < 2 || seg[0] != '{' || seg[len(seg)-1] != '}' || strings.ContainsAny(seg[1:len(seg)-1], "{}") {
			return nil, nil, fmt.Sprintf("segment %q: a parameter must be a whole segment, {name} or {name...}", seg)
		}
		name, catchAll := strings.CutSuffix(seg[1:len(seg)-1], "...")
		if !validRouteParam(name) {
			return nil, nil, fmt.Sprintf("segment %q: a parameter name must be non-empty ASCII letters, digits and '_'", seg)
		}
		if slices.Contains(names, name) {
			return nil, nil, fmt.Sprintf("two parameters named %q", name)
		}
		if names = append(names, name); len(names) > maxParams {
			return nil, nil, fmt.Sprintf("more than %d parameters", maxParams)
		}
		if !catchAll {
			segs = append(segs, routeSeg{kind: routeParam})
			continue
		}
		if i != len(parts)-1 {
			return nil, nil, fmt.Sprintf("catch-all %q must be the last segment", seg)
		}
		segs = append(segs, routeSeg{kind: routeCatchAll})
	}
	return segs, names, ""
}

func validRouteParam(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// literalChild returns n's child for the literal seg, adding it if need be.
func (n *routeNode) literalChild(seg string) *routeNode {
	i, found := slices.BinarySearchFunc(n.lits, seg, func(c *routeNode, s string) int { return strings.Compare(c.seg, s) })
	if found {
		return n.lits[i]
	}
	c := &routeNode{seg: seg}
	n.lits = slices.Insert(n.lits, i, c)
	if len(n.lits) >= routeLitMapMin {
		if n.litMap == nil {
			n.litMap = make(map[string]*routeNode, len(n.lits))
			for _, l := range n.lits {
				n.litMap[l.seg] = l
			}
		}
		n.litMap[seg] = c
	}
	return c
}

// methodBit returns the mask bit of method, giving it one if it has none.
func (r *Router) methodBit(method string) uint64 {
	if i := slices.Index(r.methods, method); i >= 0 {
		return 1 << i
	}
	if len(r.methods) == 64 {
		panic(fmt.Sprintf("httpd: Router.Handle(%q, ...): more than 64 distinct methods", method))
	}
	r.methods = append(r.methods, method)
	r.sorted = append(r.sorted, len(r.methods)-1)
	slices.SortFunc(r.sorted, func(a, b int) int { return strings.Compare(r.methods[a], r.methods[b]) })
	return 1 << (len(r.methods) - 1)
}

// allowList returns the methods of mask, alphabetical and comma-separated.
func (r *Router) allowList(mask uint64) string {
	var b strings.Builder
	for _, i := range r.sorted {
		if mask&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			b.WriteString(r.methods[i])
		}
	}
	return b.String()
}

// routeMatch is the state of one lookup.
type routeMatch struct {
	method []byte
	first  *routeNode // the most specific node matching the path, if any
	mask   uint64     // the methods of every node matching the path
}

// Serve dispatches c to the handler of the most specific pattern matching
// its method and path, with the path parameters set (Ctx.Param); or
// answers 404 (the NotFound handler) or 405.
func (r *Router) Serve(c *Ctx) {
	m := routeMatch{method: c.Method()}
	if path := c.Path(); len(path) > 0 && path[0] == '/' {
		if ep := r.root.lookup(path[1:], c, 0, &m); ep != nil {
			for i, name := range ep.names {
				c.params[i].name = name
			}
			c.nparams = len(ep.names)
			ep.h.Serve(c)
			return
		}
	}
	if m.first == nil {
		if r.notFound == nil { // a Router not from NewRouter, without routes
			routeNotFound(c)
			return
		}
		r.notFound.Serve(c)
		return
	}
	c.SetStatus(405)
	if m.mask == m.first.mask {
		c.AddField(m.first.allow)
	} else {
		// Patterns with different methods match the path: the Allow
		// field lists them all, built in the reused header buffer.
		h := append(c.hdr, "Allow: "...)
		sep := false
		for _, i := range r.sorted {
			if m.mask&(1<<i) != 0 {
				if sep {
					h = append(h, ", "...)
				}
				h = append(h, r.methods[i]...)
				sep = true
			}
		}
		c.hdr = append(h, "\r\n"...)
	}
	c.AddField(routeTextPlain)
	_, _ = c.WriteString(routeNotAllowedBody)
}

// lookup matches rest, the path after the '/' that ends the segments n
// stands for, against n's subtree, most specific child first, and returns
// the endpoint for m.method. Parameter values go to c.params from index
// depth on.
func (n *routeNode) lookup(rest []byte, c *Ctx, depth int, m *routeMatch) *routeEndpoint {
	seg, tail, more := rest, rest[len(rest):], false
	if i := indexByte(rest, '/'); i >= 0 {
		seg, tail, more = rest[:i], rest[i+1:], true
	}
	if l := n.literal(seg); l != nil {
		if ep := l.next(tail, more, c, depth, m); ep != nil {
			return ep
		}
	}
	if n.param != nil && len(seg) > 0 {
		c.params[depth].value = seg
		if ep := n.param.next(tail, more, c, depth+1, m); ep != nil {
			return ep
		}
	}
	if n.catchAll != nil {
		c.params[depth].value = rest
		return n.catchAll.accept(m)
	}
	return nil
}

// next goes on matching at n, whose segment has matched: the rest of the
// path when there is more, n's own endpoints when not.
func (n *routeNode) next(tail []byte, more bool, c *Ctx, depth int, m *routeMatch) *routeEndpoint {
	if more {
		return n.lookup(tail, c, depth, m)
	}
	return n.accept(m)
}

// literal returns the literal child for seg, or nil.
func (n *routeNode) literal(seg []byte) *routeNode {
	if n.litMap != nil {
		return n.litMap[string(seg)]
	}
	for _, l := range n.lits {
		if l.seg == string(seg) {
			return l
		}
	}
	return nil
}

// accept returns n's endpoint for m.method, if any, for a path ending at
// n; a path that ends at n but finds no endpoint for the method adds n's
// methods to those a 405 lists.
func (n *routeNode) accept(m *routeMatch) *routeEndpoint {
	if len(n.eps) == 0 && n.any == nil {
		return nil
	}
	if ep := n.endpoint(m.method); ep != nil {
		return ep
	}
	if string(m.method) == "HEAD" {
		if ep := n.endpoint(routeGET); ep != nil {
			return ep
		}
	}
	if n.any != nil {
		return n.any
	}
	if m.first == nil {
		m.first = n
	}
	m.mask |= n.mask
	return nil
}

var routeGET = []byte("GET")

func (n *routeNode) endpoint(method []byte) *routeEndpoint {
	for i := range n.eps {
		if n.eps[i].method == string(method) {
			return &n.eps[i]
		}
	}
	return nil
}
