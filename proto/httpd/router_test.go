package httpd

import (
	"fmt"
	"math/rand"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// routerRoutes is a realistic route set: literals, parameters, catch-alls,
// literals overlapping parameters, several methods per path, a HEAD of its
// own, an any-method route and a trailing slash.
var routerRoutes = []struct{ method, pattern string }{
	{"GET", "/"},
	{"GET", "/hello/{name}"},
	{"POST", "/hello/{name}"},
	{"GET", "/hello/world"},
	{"GET", "/users"},
	{"POST", "/users"},
	{"OPTIONS", "/users"},
	{"GET", "/users/{id}"},
	{"PUT", "/users/{id}"},
	{"PATCH", "/users/{id}"},
	{"DELETE", "/users/{id}"},
	{"POST", "/users/me"},
	{"GET", "/users/{id}/posts/{post}"},
	{"GET", "/users/me/posts/{post}"},
	{"GET", "/users/{id}/settings"},
	{"GET", "/static/{path...}"},
	{"GET", "/static/index.html"},
	{"GET", "/files/{dir}/{rest...}"},
	{"GET", "/doc"},
	{"HEAD", "/doc"},
	{"", "/any/{x}"},
	{"GET", "/any/{x}"},
	{"GET", "/trailing/"},
	{"GET", "/a/{b}/c"},
	{"GET", "/a/b/{c}"},
	{"GET", "/p/{a}"},
	{"POST", "/p/{b}"},
	{"GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}"},
}

// routeEcho answers "METHOD PATTERN name=value..." (ANY for the method ""),
// the parameters in path order, allocating nothing.
func routeEcho(method, pattern string) func(*Ctx) {
	if method == "" {
		method = "ANY"
	}
	label := method + " " + pattern
	return func(c *Ctx) {
		_, _ = c.WriteString(label)
		for _, p := range c.params[:c.nparams] {
			_, _ = c.WriteString(" ")
			_, _ = c.WriteString(p.name)
			_, _ = c.WriteString("=")
			_, _ = c.Write(c.Param(p.name))
		}
	}
}

func newTestRouter(order []int) *Router {
	r := NewRouter()
	for _, i := range order {
		rt := routerRoutes[i]
		r.HandleFunc(rt.method, rt.pattern, routeEcho(rt.method, rt.pattern))
	}
	return r
}

// routeResp is the part of a response the router decides.
type routeResp struct {
	status int
	allow  string // "" when absent; "DUP" when there are two
	ctype  string
	length int // Content-Length
	body   string
}

// routeDo serves one raw request through the server's protocol loop.
func routeDo(t *testing.T, srv *Server, req string) routeResp {
	t.Helper()
	var s connState
	n, out, _, nresp := s.serve([]byte(req), nil, srv, nil)
	if n != len(req) || nresp != 1 {
		t.Fatalf("serve(%q) consumed %d of %d bytes, %d responses", req, n, len(req), nresp)
	}
	head, body, ok := strings.Cut(string(out), "\r\n\r\n")
	if !ok {
		t.Fatalf("no end of head in %q", out)
	}
	lines := strings.Split(head, "\r\n")
	var r routeResp
	r.body = body
	var err error
	if r.status, err = strconv.Atoi(strings.Fields(lines[0])[1]); err != nil {
		t.Fatalf("status line %q", lines[0])
	}
	for _, l := range lines[1:] {
		name, value, _ := strings.Cut(l, ": ")
		switch name {
		case "Allow":
			if r.allow != "" {
				value = "DUP"
			}
			r.allow = value
		case "Content-Type":
			r.ctype = value
		case "Content-Length":
			r.length, _ = strconv.Atoi(value)
		}
	}
	return r
}

func routeReq(method, target string) string {
	return method + " " + target + " HTTP/1.1\r\nHost: h\r\n\r\n"
}

const routerTextPlain = "text/plain; charset=utf-8"

var routerTests = []struct {
	name           string
	method, target string
	status         int
	body           string // for 404 and 405 the default bodies are checked
	allow          string
}{
	{"root", "GET", "/", 200, "GET /", ""},
	{"param", "GET", "/hello/bob", 200, "GET /hello/{name} name=bob", ""},
	{"literal beats param", "GET", "/hello/world", 200, "GET /hello/world", ""},
	{"param has the method the literal lacks", "POST", "/hello/world", 200, "POST /hello/{name} name=world", ""},
	{"405 lists the methods of every match", "DELETE", "/hello/world", 405, "", "GET, HEAD, POST"},
	{"405 of one node", "DELETE", "/hello/bob", 405, "", "GET, HEAD, POST"},
	{"param is one segment", "GET", "/hello/a/b", 404, "", ""},
	{"param is not empty", "GET", "/hello/", 404, "", ""},
	{"no segment for the param", "GET", "/hello", 404, "", ""},
	{"literal", "GET", "/users", 200, "GET /users", ""},
	{"literal POST", "POST", "/users", 200, "POST /users", ""},
	{"OPTIONS is a method like another", "OPTIONS", "/users", 200, "OPTIONS /users", ""},
	{"405 with OPTIONS", "PUT", "/users", 405, "", "GET, HEAD, OPTIONS, POST"},
	// "get" (methods are case-sensitive) and "/hello/b%zz" (a malformed
	// escape) never reach a handler: the server answers 501 and 400
	// (conformance_test.go).
	{"GET param", "GET", "/users/42", 200, "GET /users/{id} id=42", ""},
	{"PUT param", "PUT", "/users/42", 200, "PUT /users/{id} id=42", ""},
	{"PATCH param", "PATCH", "/users/42", 200, "PATCH /users/{id} id=42", ""},
	{"DELETE param", "DELETE", "/users/42", 200, "DELETE /users/{id} id=42", ""},
	{"405 param", "POST", "/users/42", 405, "", "DELETE, GET, HEAD, PATCH, PUT"},
	{"literal without the method falls to the param", "GET", "/users/me", 200, "GET /users/{id} id=me", ""},
	{"literal with the method", "POST", "/users/me", 200, "POST /users/me", ""},
	{"405 union of literal and param", "TRACE", "/users/me", 405, "", "DELETE, GET, HEAD, PATCH, POST, PUT"},
	{"two params", "GET", "/users/42/posts/7", 200, "GET /users/{id}/posts/{post} id=42 post=7", ""},
	{"literal then param", "GET", "/users/me/posts/7", 200, "GET /users/me/posts/{post} post=7", ""},
	{"literal subtree fails, param subtree matches", "GET", "/users/me/settings", 200, "GET /users/{id}/settings id=me", ""},
	{"param then literal", "GET", "/users/42/settings", 200, "GET /users/{id}/settings id=42", ""},
	{"prefix of a route", "GET", "/users/42/posts", 404, "", ""},
	{"longer than every route", "GET", "/users/42/posts/7/x", 404, "", ""},
	{"catch-all empty", "GET", "/static/", 200, "GET /static/{path...} path=", ""},
	{"catch-all one", "GET", "/static/app.js", 200, "GET /static/{path...} path=app.js", ""},
	{"catch-all many", "GET", "/static/css/site.css", 200, "GET /static/{path...} path=css/site.css", ""},
	{"catch-all keeps slashes", "GET", "/static//a//", 200, "GET /static/{path...} path=/a//", ""},
	{"literal beats catch-all", "GET", "/static/index.html", 200, "GET /static/index.html", ""},
	{"catch-all needs its slash", "GET", "/static", 404, "", ""},
	{"405 catch-all", "POST", "/static/x", 405, "", "GET, HEAD"},
	{"param and catch-all", "GET", "/files/a/b/c", 200, "GET /files/{dir}/{rest...} dir=a rest=b/c", ""},
	{"param and empty catch-all", "GET", "/files/a/", 200, "GET /files/{dir}/{rest...} dir=a rest=", ""},
	{"empty param before catch-all", "GET", "/files//x", 404, "", ""},
	{"no catch-all slash", "GET", "/files/a", 404, "", ""},
	{"any method", "POST", "/any/1", 200, "ANY /any/{x} x=1", ""},
	{"method beats any", "GET", "/any/1", 200, "GET /any/{x} x=1", ""},
	{"trailing slash", "GET", "/trailing/", 200, "GET /trailing/", ""},
	{"trailing slash is literal", "GET", "/trailing", 404, "", ""},
	{"leftmost literal decides", "GET", "/a/b/c", 200, "GET /a/b/{c} c=c", ""},
	{"literal at depth 2", "GET", "/a/x/c", 200, "GET /a/{b}/c b=x", ""},
	{"literal at depth 1", "GET", "/a/b/d", 200, "GET /a/b/{c} c=d", ""},
	{"neither", "GET", "/a/x/d", 404, "", ""},
	{"names per method GET", "GET", "/p/1", 200, "GET /p/{a} a=1", ""},
	{"names per method POST", "POST", "/p/1", 200, "POST /p/{b} b=1", ""},
	{"eight params", "GET", "/1/2/3/4/5/6/7/8", 200, "GET /{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h} a=1 b=2 c=3 d=4 e=5 f=6 g=7 h=8", ""},
	{"nine segments", "GET", "/1/2/3/4/5/6/7/8/9", 404, "", ""},
	{"percent-encoded param", "GET", "/hello/b%20b", 200, "GET /hello/{name} name=b b", ""},
	{"percent-encoded literal", "GET", "/users/%6De/posts/%37", 200, "GET /users/me/posts/{post} post=7", ""},
	{"encoded slash separates segments", "GET", "/hello/a%2Fb", 404, "", ""},
	{"query is not the path", "GET", "/hello/bob?x=/y", 200, "GET /hello/{name} name=bob", ""},
	{"absolute-form", "GET", "http://h/users/42", 200, "GET /users/{id} id=42", ""},
	{"absolute-form without path", "GET", "http://h", 200, "GET /", ""},
	{"asterisk-form", "OPTIONS", "*", 404, "", ""},
	{"unknown literal", "GET", "/nope", 404, "", ""},
}

func checkRoute(t *testing.T, srv *Server, method, target string, status int, body, allow string) {
	t.Helper()
	got := routeDo(t, srv, routeReq(method, target))
	switch status {
	case 404:
		body = "404 page not found\n"
	case 405:
		body = "405 method not allowed\n"
	}
	if got.status != status || got.body != body || got.allow != allow {
		t.Errorf("%s %s: got %d %q Allow %q, want %d %q Allow %q",
			method, target, got.status, got.body, got.allow, status, body, allow)
	}
	if status != 200 && got.ctype != routerTextPlain {
		t.Errorf("%s %s: got Content-Type %q, want %q", method, target, got.ctype, routerTextPlain)
	}
}

func TestRouter(t *testing.T) {
	srv := New(Options{Handler: newTestRouter(routeOrder(-1))})
	for _, tt := range routerTests {
		t.Run(tt.name, func(t *testing.T) {
			checkRoute(t, srv, tt.method, tt.target, tt.status, tt.body, tt.allow)
		})
	}
}

// routeOrder returns the indices of routerRoutes in registration order
// (seed -1), reversed (seed -2) or shuffled.
func routeOrder(seed int64) []int {
	order := make([]int, len(routerRoutes))
	for i := range order {
		order[i] = i
	}
	switch seed {
	case -1:
	case -2:
		slices.Reverse(order)
	default:
		rand.New(rand.NewSource(seed)).Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	return order
}

func TestRouterRegistrationOrder(t *testing.T) {
	for seed := int64(-2); seed < 20; seed++ {
		if seed == -1 {
			continue // TestRouter's order
		}
		t.Run(fmt.Sprint("order ", seed), func(t *testing.T) {
			srv := New(Options{Handler: newTestRouter(routeOrder(seed))})
			for _, tt := range routerTests {
				checkRoute(t, srv, tt.method, tt.target, tt.status, tt.body, tt.allow)
			}
		})
	}
}

func TestRouterHEAD(t *testing.T) {
	srv := New(Options{Handler: newTestRouter(routeOrder(-1))})
	tests := []struct {
		name, target string
		status       int
		lengthOf     string // the body the handler wrote, which HEAD does not get
		allow        string
	}{
		{"falls back to GET", "/users/42", 200, "GET /users/{id} id=42", ""},
		{"GET literal", "/hello/world", 200, "GET /hello/world", ""},
		{"HEAD of its own", "/doc", 200, "HEAD /doc", ""},
		{"GET catch-all", "/static/a", 200, "GET /static/{path...} path=a", ""},
		{"GET beats any", "/any/1", 200, "GET /any/{x} x=1", ""},
		{"no route", "/users/me/x", 404, "404 page not found\n", ""},
		{"GET with other names per method", "/p/1", 200, "GET /p/{a} a=1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := routeDo(t, srv, routeReq("HEAD", tt.target))
			if got.status != tt.status || got.body != "" || got.length != len(tt.lengthOf) || got.allow != tt.allow {
				t.Errorf("HEAD %s: got %d, Content-Length %d, body %q, Allow %q; want %d, %d, no body, Allow %q",
					tt.target, got.status, got.length, got.body, got.allow, tt.status, len(tt.lengthOf), tt.allow)
			}
		})
	}

	// Without a GET handler HEAD is not allowed, and Allow lists no HEAD.
	r := NewRouter()
	r.POST("/form", routeEcho("POST", "/form"))
	srv = New(Options{Handler: r})
	if got := routeDo(t, srv, routeReq("HEAD", "/form")); got.status != 405 || got.allow != "POST" {
		t.Errorf("HEAD /form: got %d Allow %q, want 405 Allow \"POST\"", got.status, got.allow)
	}
}

func TestRouterAllowOrder(t *testing.T) {
	methods := []string{"PUT", "GET", "DELETE", "PATCH", "POST", "OPTIONS", "MKCOL", "CONNECT"}
	const want = "CONNECT, DELETE, GET, HEAD, MKCOL, OPTIONS, PATCH, POST, PUT"
	for seed := int64(0); seed < 10; seed++ {
		rnd := rand.New(rand.NewSource(seed))
		ms := slices.Clone(methods)
		rnd.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
		r := NewRouter()
		for _, m := range ms {
			r.HandleFunc(m, "/r", routeEcho(m, "/r"))
			// The union path: methods spread over a literal and a param.
			if rnd.Intn(2) == 0 {
				r.HandleFunc(m, "/u/x", routeEcho(m, "/u/x"))
			} else {
				r.HandleFunc(m, "/u/{p}", routeEcho(m, "/u/{p}"))
			}
		}
		srv := New(Options{Handler: r})
		for _, target := range []string{"/r", "/u/x"} {
			if got := routeDo(t, srv, routeReq("TRACE", target)); got.status != 405 || got.allow != want {
				t.Errorf("order %v, TRACE %s: got %d Allow %q, want 405 Allow %q", ms, target, got.status, got.allow, want)
			}
		}
	}
}

func TestRouterNotFound(t *testing.T) {
	r := NewRouter()
	srv := New(Options{Handler: r})
	checkRoute(t, srv, "GET", "/", 404, "", "")

	r.GET("/x", routeEcho("GET", "/x"))
	r.NotFound(HandlerFunc(func(c *Ctx) {
		c.SetStatus(410)
		_, _ = c.WriteString("gone: ")
		_, _ = c.Write(c.Path())
	}))
	if got := routeDo(t, srv, routeReq("GET", "/y")); got.status != 410 || got.body != "gone: /y" {
		t.Errorf("GET /y: got %d %q, want 410 \"gone: /y\"", got.status, got.body)
	}
	// A 405 is not the NotFound handler's.
	checkRoute(t, srv, "POST", "/x", 405, "", "GET, HEAD")

	// The zero Router works too.
	srv = New(Options{Handler: &Router{}})
	checkRoute(t, srv, "GET", "/", 404, "", "")
}

func TestRouterHandleAPI(t *testing.T) {
	r := NewRouter()
	r.GET("/m", routeEcho("GET", "/m"))
	r.POST("/m", routeEcho("POST", "/m"))
	r.PUT("/m", routeEcho("PUT", "/m"))
	r.PATCH("/m", routeEcho("PATCH", "/m"))
	r.DELETE("/m", routeEcho("DELETE", "/m"))
	r.Handle("MKCOL", "/m", HandlerFunc(routeEcho("MKCOL", "/m")))
	srv := New(Options{Handler: r})
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "MKCOL"} {
		checkRoute(t, srv, m, "/m", 200, m+" /m", "")
	}
	checkRoute(t, srv, "TRACE", "/m", 405, "", "DELETE, GET, HEAD, MKCOL, PATCH, POST, PUT")
}

func TestRouterPanics(t *testing.T) {
	echo := HandlerFunc(routeEcho("GET", ""))
	tests := []struct {
		name, method, pattern string
		h                     Handler
		want                  string // in the panic message
	}{
		{"empty pattern", "GET", "", echo, "must start with '/'"},
		{"no leading slash", "GET", "users", echo, "must start with '/'"},
		{"empty braces", "GET", "/a/{}", echo, "name must be non-empty"},
		{"empty catch-all name", "GET", "/a/{...}", echo, "name must be non-empty"},
		{"brace not closing the segment", "GET", "/a/{x}y", echo, "whole segment"},
		{"brace not opening the segment", "GET", "/a/x{y}", echo, "whole segment"},
		{"unclosed brace", "GET", "/a/{x", echo, "whole segment"},
		{"brace across segments", "GET", "/a/{x/y}", echo, "whole segment"},
		{"stray closing brace", "GET", "/a/x}", echo, "whole segment"},
		{"nested braces", "GET", "/a/{{x}}", echo, "whole segment"},
		{"bad name", "GET", "/a/{x-y}", echo, "name must be"},
		{"two params of one name", "GET", "/a/{x}/{x}", echo, `two parameters named "x"`},
		{"param and catch-all of one name", "GET", "/a/{x}/{x...}", echo, `two parameters named "x"`},
		{"nine params", "GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", echo, "more than 8 parameters"},
		{"catch-all not last", "GET", "/a/{x...}/b", echo, "must be the last segment"},
		{"catch-all before a trailing slash", "GET", "/a/{x...}/", echo, "must be the last segment"},
		{"same method and pattern", "GET", "/users/{id}", echo, "conflicts with GET /users/{id}"},
		{"same shape, other names", "GET", "/users/{uid}", echo, "conflicts with GET /users/{id}"},
		{"same catch-all, other name", "GET", "/static/{p...}", echo, "conflicts with GET /static/{path...}"},
		{"same any-method pattern", "", "/any/{y}", echo, `conflicts with the pattern "/any/{x}"`},
		{"method not a token", "GE T", "/x", echo, "not a token"},
		{"nil handler", "GET", "/x", nil, "nil handler"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestRouter(routeOrder(-1))
			msg := func() (msg string) {
				defer func() {
					if v := recover(); v != nil {
						msg = fmt.Sprint(v)
					}
				}()
				r.Handle(tt.method, tt.pattern, tt.h)
				return ""
			}()
			if msg == "" {
				t.Fatalf("Handle(%q, %q) did not panic", tt.method, tt.pattern)
			}
			prefix := fmt.Sprintf("httpd: Router.Handle(%q, %q): ", tt.method, tt.pattern)
			if !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, tt.want) {
				t.Errorf("got panic %q, want %q and %q", msg, prefix, tt.want)
			}
			// A refused route leaves the router as it was.
			srv := New(Options{Handler: r})
			checkRoute(t, srv, "GET", "/a/1", 404, "", "")
			checkRoute(t, srv, "GET", "/users/42", 200, "GET /users/{id} id=42", "")
		})
	}

	t.Run("HandleFunc nil", func(t *testing.T) {
		defer func() {
			if v := recover(); v == nil || !strings.Contains(fmt.Sprint(v), "nil handler") {
				t.Errorf("got panic %v, want a nil handler one", v)
			}
		}()
		NewRouter().HandleFunc("GET", "/", nil)
	})
	t.Run("NotFound nil", func(t *testing.T) {
		defer func() {
			if v := recover(); v == nil {
				t.Error("no panic")
			}
		}()
		NewRouter().NotFound(nil)
	})
}

// routerAllocTests are requests of every kind of match, served in a loop.
var routerAllocTests = []struct {
	name, req string
	status    int
}{
	{"two params", routeReq("GET", "/users/42/posts/7"), 200},
	{"literal", routeReq("GET", "/hello/world"), 200},
	{"catch-all", routeReq("GET", "/static/css/site.css"), 200},
	{"backtracking", routeReq("GET", "/users/me/settings"), 200},
	{"eight params", routeReq("GET", "/1/2/3/4/5/6/7/8"), 200},
	{"percent-encoded", routeReq("GET", "/hello/b%20b"), 200},
	{"HEAD to GET", routeReq("HEAD", "/users/42"), 200},
	{"404", routeReq("GET", "/nope/nope"), 404},
	{"405", routeReq("POST", "/users/42"), 405},
	{"405 union", routeReq("TRACE", "/users/me"), 405},
}

func TestRouterAllocs(t *testing.T) {
	srv := New(Options{Handler: newTestRouter(routeOrder(-1))})
	for _, tt := range routerAllocTests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.req)
			if got := routeDo(t, srv, tt.req); got.status != tt.status {
				t.Fatalf("got %d, want %d", got.status, tt.status)
			}
			var s connState
			out := make([]byte, 0, 8<<10)
			allocs := testing.AllocsPerRun(1000, func() {
				n, o, act, _ := s.serve(in, out[:0], srv, nil)
				if n != len(in) || act != actKeep {
					panic("unexpected serve result")
				}
				out = o
			})
			if allocs != 0 {
				t.Errorf("got %v allocs per request, want 0", allocs)
			}
		})
	}
}
