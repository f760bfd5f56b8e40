package httpd

import "testing"

// benchRoutes is an API of a realistic size and shape (after GitHub's REST
// API): literals, parameters, literals beside parameters, a catch-all.
var benchRoutes = []struct{ method, pattern string }{
	{"GET", "/"},
	{"GET", "/healthz"},
	{"GET", "/metrics"},
	{"GET", "/user"},
	{"PATCH", "/user"},
	{"GET", "/user/repos"},
	{"POST", "/user/repos"},
	{"GET", "/users"},
	{"GET", "/users/{user}"},
	{"GET", "/users/{user}/repos"},
	{"GET", "/users/{user}/followers"},
	{"GET", "/users/{user}/following/{target}"},
	{"GET", "/orgs/{org}"},
	{"PATCH", "/orgs/{org}"},
	{"GET", "/orgs/{org}/repos"},
	{"POST", "/orgs/{org}/repos"},
	{"GET", "/orgs/{org}/members"},
	{"GET", "/orgs/{org}/members/{user}"},
	{"DELETE", "/orgs/{org}/members/{user}"},
	{"GET", "/repos/{owner}/{repo}"},
	{"PATCH", "/repos/{owner}/{repo}"},
	{"DELETE", "/repos/{owner}/{repo}"},
	{"GET", "/repos/{owner}/{repo}/issues"},
	{"POST", "/repos/{owner}/{repo}/issues"},
	{"GET", "/repos/{owner}/{repo}/issues/{number}"},
	{"PATCH", "/repos/{owner}/{repo}/issues/{number}"},
	{"GET", "/repos/{owner}/{repo}/issues/{number}/comments"},
	{"POST", "/repos/{owner}/{repo}/issues/{number}/comments"},
	{"GET", "/repos/{owner}/{repo}/pulls"},
	{"POST", "/repos/{owner}/{repo}/pulls"},
	{"GET", "/repos/{owner}/{repo}/pulls/{number}"},
	{"PUT", "/repos/{owner}/{repo}/pulls/{number}/merge"},
	{"GET", "/repos/{owner}/{repo}/branches"},
	{"GET", "/repos/{owner}/{repo}/branches/{branch}"},
	{"GET", "/repos/{owner}/{repo}/contents/{path...}"},
	{"PUT", "/repos/{owner}/{repo}/contents/{path...}"},
	{"GET", "/search/repositories"},
	{"GET", "/search/issues"},
	{"GET", "/gists"},
	{"GET", "/gists/public"},
	{"GET", "/gists/{id}"},
	{"GET", "/static/{file...}"},
}

func benchRouter() *Router {
	r := NewRouter()
	for _, rt := range benchRoutes {
		_, names, _ := parseRoutePattern(rt.pattern)
		// The handler writes its parameters, as a real one would use them.
		r.HandleFunc(rt.method, rt.pattern, func(c *Ctx) {
			for _, n := range names {
				_, _ = c.Write(c.Param(n))
			}
		})
	}
	return r
}

var benchRouterCases = []struct{ name, method, target string }{
	{"static", "GET", "/healthz"},
	{"1 param", "GET", "/users/octocat"},
	{"2 params", "GET", "/repos/golang/go"},
	{"3 params", "GET", "/repos/golang/go/issues/12345/comments"},
	{"catch-all", "GET", "/repos/golang/go/contents/src/net/http/server.go"},
	{"percent-encoded", "GET", "/users/octo%20cat"},
	{"404", "GET", "/repos/golang/go/nothing"},
	{"405", "POST", "/repos/golang/go"},
}

// BenchmarkRouter measures routing: "serve" is a whole request through the
// protocol loop (parse, route, handler, response), beside a bare handler as
// the baseline; "match" is Router.Serve alone on a parsed request.
func BenchmarkRouter(b *testing.B) {
	r := benchRouter()
	b.Run("serve/baseline (no router)", func(b *testing.B) {
		benchServe(b, New(Options{Handler: HandlerFunc(func(c *Ctx) {})}), routeReq("GET", "/repos/golang/go"))
	})
	for _, bc := range benchRouterCases {
		b.Run("serve/"+bc.name, func(b *testing.B) {
			benchServe(b, New(Options{Handler: r}), routeReq(bc.method, bc.target))
		})
	}
	for _, bc := range benchRouterCases {
		b.Run("match/"+bc.name, func(b *testing.B) {
			srv := New(Options{Handler: r})
			c := &srv.ctx
			if _, err := ParseRequest([]byte(routeReq(bc.method, bc.target)), &c.req); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				c.reset()
				r.Serve(c)
			}
		})
	}
}

func benchServe(b *testing.B, srv *Server, req string) {
	in := []byte(req)
	out := make([]byte, 0, 4<<10)
	var s connState
	b.ReportAllocs()
	for b.Loop() {
		n, o, act, nresp := s.serve(in, out[:0], srv, nil)
		if n != len(in) || act != actKeep || nresp != 1 {
			b.Fatalf("got consumed %d action %d responses %d", n, act, nresp)
		}
		out = o
	}
}
