package httpd

import (
	"strings"
	"testing"
)

func TestContentType(t *testing.T) {
	tests := []struct {
		name string
		file string
		want string
	}{
		{"html", "index.html", "text/html; charset=utf-8"},
		{"htm", "old.htm", "text/html; charset=utf-8"},
		{"upper case", "INDEX.HTML", "text/html; charset=utf-8"},
		{"mixed case", "Photo.JpEg", "image/jpeg"},
		{"css", "site.css", "text/css; charset=utf-8"},
		{"js", "app.js", "text/javascript; charset=utf-8"},
		{"mjs", "mod.mjs", "text/javascript; charset=utf-8"},
		{"json", "data.json", "application/json"},
		{"source map", "app.js.map", "application/json"},
		{"txt", "robots.txt", "text/plain; charset=utf-8"},
		{"xml", "sitemap.xml", "text/xml; charset=utf-8"},
		{"csv", "t.csv", "text/csv; charset=utf-8"},
		{"markdown", "README.md", "text/markdown; charset=utf-8"},
		{"svg", "logo.svg", "image/svg+xml"},
		{"png", "a.png", "image/png"},
		{"jpg", "a.jpg", "image/jpeg"},
		{"gif", "a.gif", "image/gif"},
		{"webp", "a.webp", "image/webp"},
		{"avif", "a.avif", "image/avif"},
		{"ico", "favicon.ico", "image/x-icon"},
		{"bmp", "a.bmp", "image/bmp"},
		{"woff", "f.woff", "font/woff"},
		{"woff2", "f.woff2", "font/woff2"},
		{"ttf", "f.ttf", "font/ttf"},
		{"otf", "f.otf", "font/otf"},
		{"eot", "f.eot", "application/vnd.ms-fontobject"},
		{"pdf", "doc.pdf", "application/pdf"},
		{"zip", "a.zip", "application/zip"},
		{"tar.gz is gzip", "a.tar.gz", "application/gzip"},
		{"tar", "a.tar", "application/x-tar"},
		{"brotli has no type", "app.js.br", octetStream},
		{"wasm", "m.wasm", "application/wasm"},
		{"mp4", "v.mp4", "video/mp4"},
		{"webm", "v.webm", "video/webm"},
		{"ogg", "a.ogg", "audio/ogg"},
		{"mp3", "a.mp3", "audio/mpeg"},
		{"wav", "a.wav", "audio/wav"},
		{"flac", "a.flac", "audio/flac"},
		{"m4a", "a.m4a", "audio/mp4"},
		{"mov", "v.mov", "video/quicktime"},
		{"jsonld", "d.jsonld", "application/ld+json"},
		{"webmanifest", "site.webmanifest", "application/manifest+json"},
		{"rss", "feed.rss", "application/rss+xml"},
		{"atom", "feed.atom", "application/atom+xml"},
		{"yaml", "c.yaml", "application/yaml"},
		{"yml", "c.yml", "application/yaml"},
		{"toml", "c.toml", "application/toml"},
		{"ics", "cal.ics", "text/calendar; charset=utf-8"},
		{"epub", "book.epub", "application/epub+zip"},
		{"apk", "app.apk", "application/vnd.android.package-archive"},
		{"path with dirs", "/static/css/site.css", "text/css; charset=utf-8"},
		{"dot in a directory only", "a.css/file", octetStream},
		{"no extension", "Makefile", octetStream},
		{"trailing dot", "file.", octetStream},
		{"empty", "", octetStream},
		{"dotfile name is its extension", ".html", "text/html; charset=utf-8"},
		{"unknown dotfile", ".env", octetStream},
		{"unknown extension", "a.exe", octetStream},
		{"long extension", "a." + strings.Repeat("x", 40), octetStream},
		{"extension of exactly maxExtLen", "a." + strings.Repeat("h", maxExtLen), octetStream},
		{"non-ASCII extension", "a.ｈｔｍｌ", octetStream},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ContentType(tt.file); got != tt.want {
				t.Errorf("ContentType(%q) = %q, want %q", tt.file, got, tt.want)
			}
		})
	}
}

// TestContentTypeTable checks the table itself: lower-case keys that fit
// maxExtLen, text types with a charset.
func TestContentTypeTable(t *testing.T) {
	for ext, typ := range mimeTypes {
		if ext != strings.ToLower(ext) || len(ext) > maxExtLen || strings.Contains(ext, ".") {
			t.Errorf("mimeTypes key %q: not a lower-case extension of at most %d bytes", ext, maxExtLen)
		}
		if strings.HasPrefix(typ, "text/") && !strings.HasSuffix(typ, "; charset=utf-8") {
			t.Errorf("mimeTypes[%q] = %q, a text type without charset=utf-8", ext, typ)
		}
		if got := ContentType("x." + strings.ToUpper(ext)); got != typ {
			t.Errorf("ContentType(%q) = %q, want %q", "x."+strings.ToUpper(ext), got, typ)
		}
	}
}

func TestContentTypeAllocs(t *testing.T) {
	names := []string{"index.html", "INDEX.HTML", "a/b.WebManifest", "x.unknown", "noext"}
	got := testing.AllocsPerRun(100, func() {
		for _, n := range names {
			_ = ContentType(n)
		}
	})
	if got != 0 {
		t.Errorf("ContentType allocates %v times per run, want 0", got)
	}
}
