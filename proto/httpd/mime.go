package httpd

// octetStream is the type of a file whose extension ContentType does not
// know: the browser downloads it rather than guess (no sniffing is done).
const octetStream = "application/octet-stream"

// maxExtLen is the longest extension ContentType looks up ("webmanifest" is
// 11); a longer one cannot be in the table.
const maxExtLen = 16

// mimeTypes maps a lower-case extension, without its dot, to a
// Content-Type. Text types say charset=utf-8: a static site is UTF-8, and a
// browser told nothing guesses, sometimes wrongly. JSON and the +json and
// +xml types carry no charset parameter (RFC 8259 §11 defines none; they
// are UTF-8 by definition or say so themselves).
var mimeTypes = map[string]string{
	// documents, style, script
	"html":  "text/html; charset=utf-8",
	"htm":   "text/html; charset=utf-8",
	"xhtml": "application/xhtml+xml",
	"css":   "text/css; charset=utf-8",
	"js":    "text/javascript; charset=utf-8", // RFC 9239
	"mjs":   "text/javascript; charset=utf-8",
	"cjs":   "text/javascript; charset=utf-8",
	"txt":   "text/plain; charset=utf-8",
	"log":   "text/plain; charset=utf-8",
	"md":    "text/markdown; charset=utf-8",
	"csv":   "text/csv; charset=utf-8",
	"tsv":   "text/tab-separated-values; charset=utf-8",
	"xml":   "text/xml; charset=utf-8",
	"ics":   "text/calendar; charset=utf-8",
	"vtt":   "text/vtt; charset=utf-8",

	// data
	"json":        "application/json",
	"map":         "application/json", // source maps
	"jsonld":      "application/ld+json",
	"webmanifest": "application/manifest+json",
	"rss":         "application/rss+xml",
	"atom":        "application/atom+xml",
	"yaml":        "application/yaml", // RFC 9512
	"yml":         "application/yaml",
	"toml":        "application/toml",
	"wasm":        "application/wasm",
	"pdf":         "application/pdf",
	"epub":        "application/epub+zip",

	// images
	"svg":  "image/svg+xml",
	"png":  "image/png",
	"apng": "image/apng",
	"jpg":  "image/jpeg",
	"jpeg": "image/jpeg",
	"gif":  "image/gif",
	"webp": "image/webp",
	"avif": "image/avif",
	"jxl":  "image/jxl",
	"ico":  "image/x-icon",
	"bmp":  "image/bmp",
	"tif":  "image/tiff",
	"tiff": "image/tiff",

	// fonts
	"woff":  "font/woff",
	"woff2": "font/woff2",
	"ttf":   "font/ttf",
	"otf":   "font/otf",
	"eot":   "application/vnd.ms-fontobject",

	// audio, video
	"mp4":  "video/mp4",
	"m4v":  "video/mp4",
	"webm": "video/webm",
	"ogv":  "video/ogg",
	"mov":  "video/quicktime",
	"m3u8": "application/vnd.apple.mpegurl",
	"mpd":  "application/dash+xml",
	"ogg":  "audio/ogg",
	"oga":  "audio/ogg",
	"opus": "audio/ogg",
	"mp3":  "audio/mpeg",
	"wav":  "audio/wav",
	"flac": "audio/flac",
	"m4a":  "audio/mp4",
	"aac":  "audio/aac",

	// archives and packages. A .gz or .br file served as itself is an
	// archive: gzip has a registered type (RFC 6713), brotli has none, so
	// .br stays application/octet-stream (not in the table). Serving
	// "x.css.br" as "x.css" with Content-Encoding is the caller's business.
	"zip": "application/zip",
	"gz":  "application/gzip",
	"tgz": "application/gzip",
	"tar": "application/x-tar",
	"xz":  "application/x-xz",
	"zst": "application/zstd",
	"bz2": "application/x-bzip2",
	"7z":  "application/x-7z-compressed",
	"apk": "application/vnd.android.package-archive",
}

// ContentType returns the Content-Type for a file name (a path works too)
// from its extension, compared case-insensitively: "text/html;
// charset=utf-8" for "index.HTML", "image/png" for "a/b.png". A name
// without an extension, or with one not in the table, gives
// "application/octet-stream". It does not allocate.
//
// The extension is what follows the last '.' of the last path element, as
// with path.Ext: ".png" alone is a PNG, "archive.tar.gz" is gzip, "a.d/x"
// has none.
func ContentType(name string) string {
	i := len(name) - 1
	for ; i >= 0 && name[i] != '.'; i-- {
		if name[i] == '/' {
			return octetStream
		}
	}
	if i < 0 {
		return octetStream
	}
	ext := name[i+1:]
	if len(ext) == 0 || len(ext) > maxExtLen {
		return octetStream
	}
	var buf [maxExtLen]byte
	for j := 0; j < len(ext); j++ {
		c := ext[j]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[j] = c
	}
	// A map index with a string([]byte) key does not allocate.
	if t, ok := mimeTypes[string(buf[:len(ext)])]; ok {
		return t
	}
	return octetStream
}
