package wire

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Defaults of the worker settings. The CLI shows them in --help and
// Settings.SetDefaults applies them to a zero field; nothing else repeats them.
const (
	DefaultGracefulTimeout = 30 * time.Second
	DefaultLogFormat       = LogText
	DefaultLogLevel        = slog.LevelInfo
	DefaultMaxBody         = 1 << 20 // 1 MiB, nginx's client_max_body_size
	DefaultMaxInflight     = 10000
	DefaultHeaderTimeout   = 10 * time.Second // a request head, from its first byte (nginx: client_header_timeout 60s)
	DefaultWriteTimeout    = 30 * time.Second // without write progress (nginx: send_timeout 60s)
)

// ConnsReserve is how many descriptors a worker keeps back from
// --max-conns=0 (auto): the limit is then RLIMIT_NOFILE minus these, for its
// listeners, control socket, logs and the files it is sending.
const ConnsReserve = 128

// Settings is what every worker of a master needs to serve: one definition,
// embedded in master.Config, filled by the CLI from its flags and sent to
// each worker as it is (inside Spec). A new worker setting is a field here,
// a flag that sets it and the code that uses it.
//
// The per-start facts (slot, generation, listener fds, heartbeat interval,
// CPU) are the master's to decide and live in Spec beside it.
type Settings struct {
	// Proto names the protocol the workers serve (app.Protocol.Name).
	Proto string `json:"proto"`
	// IdleTimeout closes connections idle this long (0: never).
	IdleTimeout time.Duration `json:"idle_timeout"`
	// HeaderTimeout bounds a request head (an HTTP head, a calc frame)
	// from its first byte; HTTP answers 408 then. WriteTimeout closes a
	// connection whose pending output made no progress for that long. Zero
	// disables either (the CLI's defaults are DefaultHeaderTimeout and
	// DefaultWriteTimeout).
	HeaderTimeout time.Duration `json:"header_timeout"`
	WriteTimeout  time.Duration `json:"write_timeout"`
	// MaxConns bounds each worker's open connections: at the limit it stops
	// accepting (connections wait in the backlog) until one closes. 0: the
	// worker's RLIMIT_NOFILE minus ConnsReserve.
	MaxConns int `json:"max_conns"`
	// GracefulTimeout is how long a stopping or reloaded worker lets its
	// connections finish before it cuts them.
	GracefulTimeout time.Duration `json:"graceful_timeout"`
	// Log is the log format and level of master and workers alike.
	Log Log `json:"log"`
	// MaxBody bounds a request body the http protocol buffers for its
	// handler; a larger one is answered 413.
	MaxBody int64 `json:"max_body"`
	// MaxInflight bounds the http protocol's deferred (and net/http)
	// requests per worker; past it, new requests wait in the kernel.
	MaxInflight int `json:"max_inflight"`
	// Flags are a program's own protocol flags (app.Protocol.Flags), by
	// name, as the text they print.
	Flags map[string]string `json:"flags,omitempty"`
	// AccessLog is where the http protocol logs one line per request: a
	// path (the master opens it, so a worker of another --user can write
	// it), "-" for standard output, "" for none.
	AccessLog string `json:"access_log,omitempty"`

	// Root, when set, makes the http protocol serve the files under it
	// (httpd.FileServer) instead of the greeting; CacheControl is sent with
	// them.
	Root         string `json:"root,omitempty"`
	CacheControl string `json:"cache_control,omitempty"`
	// FollowSymlinks follows symbolic links under Root that stay inside it
	// (links leading out of it are refused whatever this says).
	FollowSymlinks bool `json:"follow_symlinks,omitempty"`
	// Autoindex lists directories under Root that have no index.html.
	Autoindex bool `json:"autoindex,omitempty"`

	// accessLog is the open access log, set in the worker (SetAccessLogWriter).
	accessLog io.Writer
	// rootFD+1 is the inherited --root directory in a worker (0: none).
	rootFD1 int
}

// RootFD returns the --root directory the worker inherited.
func (s *Settings) RootFD() (fd int, ok bool) { return s.rootFD1 - 1, s.rootFD1 > 0 }

// SetRootFD is called by the worker once it holds the --root directory.
func (s *Settings) SetRootFD(fd int) { s.rootFD1 = fd + 1 }

// AccessLogWriter returns the open access log in a worker (nil: none).
func (s *Settings) AccessLogWriter() io.Writer { return s.accessLog }

// SetAccessLogWriter is called by the worker once it holds the access log.
func (s *Settings) SetAccessLogWriter(w io.Writer) { s.accessLog = w }

// Flag returns the value of a program's own protocol flag ("" if unset).
func (s *Settings) Flag(name string) string { return s.Flags[name] }

// MaxInput is the most unconsumed input a worker's loop lets a connection
// hold: a whole request, head and body (with chunked framing), must fit.
func (s *Settings) MaxInput() int {
	return int(max(s.MaxBody, 0)) + 1<<20
}

// SetDefaults fills the zero fields with their defaults.
func (s *Settings) SetDefaults() {
	if s.GracefulTimeout == 0 {
		s.GracefulTimeout = DefaultGracefulTimeout
	}
	if s.Log.Format == "" {
		s.Log.Format = DefaultLogFormat
	}
	if s.MaxBody == 0 {
		s.MaxBody = DefaultMaxBody
	}
	if s.MaxInflight == 0 {
		s.MaxInflight = DefaultMaxInflight
	}
}

// Validate reports every setting that cannot work, each error naming its
// flag, so a start fails before anything is bound or forked.
func (s *Settings) Validate() error {
	var errs []error
	if s.Proto == "" {
		errs = append(errs, errors.New("--proto: no protocol"))
	}
	if s.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("--idle-timeout %v: must not be negative (0 disables it)", s.IdleTimeout))
	}
	if s.HeaderTimeout < 0 {
		errs = append(errs, fmt.Errorf("--header-timeout %v: must not be negative (0 disables it)", s.HeaderTimeout))
	}
	if s.WriteTimeout < 0 {
		errs = append(errs, fmt.Errorf("--write-timeout %v: must not be negative (0 disables it)", s.WriteTimeout))
	}
	if s.MaxConns < 0 || s.MaxConns > 1<<24 {
		errs = append(errs, fmt.Errorf("--max-conns %d: want 1 to 16777216, or 0 for the fd limit", s.MaxConns))
	}
	if s.GracefulTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--graceful-timeout %v: must be positive", s.GracefulTimeout))
	}
	if s.MaxBody < 0 || s.MaxBody > 1<<30 {
		errs = append(errs, fmt.Errorf("--max-body %d: want 1 byte to 1 GiB", s.MaxBody))
	}
	if s.MaxInflight < 0 || s.MaxInflight > 1<<20 {
		errs = append(errs, fmt.Errorf("--max-inflight %d: want 1 to 1048576", s.MaxInflight))
	}
	if s.Root != "" {
		if st, err := os.Stat(s.Root); err != nil {
			errs = append(errs, fmt.Errorf("--root: %w", err))
		} else if !st.IsDir() {
			errs = append(errs, fmt.Errorf("--root %s: not a directory", s.Root))
		}
	}
	for i := 0; i < len(s.CacheControl); i++ {
		if c := s.CacheControl[i]; c < 0x20 && c != '\t' || c == 0x7f {
			errs = append(errs, fmt.Errorf("--cache-control %q: control characters", s.CacheControl))
			break
		}
	}
	if err := s.Log.Validate(); err != nil {
		errs = append(errs, err)
	}
	if name := s.notUTF8(); name != "" {
		errs = append(errs, fmt.Errorf("%s: not valid UTF-8 (the workers receive their settings as JSON, which cannot carry it)", name))
	}
	return errors.Join(errs...)
}

// notUTF8 names the flag of the first setting that is not valid UTF-8 ("" if
// none).
func (s *Settings) notUTF8() string {
	for _, f := range []struct{ flag, v string }{{"--proto", s.Proto}, {"--log-format", string(s.Log.Format)},
		{"--access-log", s.AccessLog}, {"--root", s.Root}, {"--cache-control", s.CacheControl}} {
		if !utf8.ValidString(f.v) {
			return f.flag
		}
	}
	for name, v := range s.Flags {
		if !utf8.ValidString(name) || !utf8.ValidString(v) {
			return "--" + strings.ToValidUTF8(name, "?")
		}
	}
	return ""
}

// LogFormat is how log records are written.
type LogFormat string

// Log formats.
const (
	LogText LogFormat = "text" // slog's key=value text
	LogJSON LogFormat = "json" // one JSON object per line
)

// Log is the log settings. Level travels as slog's text form ("INFO").
type Log struct {
	Format LogFormat  `json:"format"`
	Level  slog.Level `json:"level"`
}

// ParseLogLevel reads --log-level: debug, info, warn or error (slog's
// names, any case, with an optional +/-N offset).
func ParseLogLevel(s string) (slog.Level, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return lv, nil
}

// Validate checks the format.
func (l Log) Validate() error {
	switch l.Format {
	case LogText, LogJSON:
		return nil
	}
	return fmt.Errorf("--log-format %q: want text or json", l.Format)
}

// NewLogger returns a logger writing to w in l's format, at l's level.
func (l Log) NewLogger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: l.Level}
	if l.Format == LogJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// ParseSize reads a size flag: a number of bytes, or one with a binary
// suffix as nginx reads them: 512k, 1m (also K, M, G, KiB, MiB, GiB, kB...
// all powers of 1024).
func ParseSize(s string) (int64, error) {
	num := strings.TrimRight(s, "kKmMgGiIbB")
	unit := strings.ToLower(s[len(num):])
	mult := int64(1)
	switch unit {
	case "", "b":
	case "k", "kb", "kib":
		mult = 1 << 10
	case "m", "mb", "mib":
		mult = 1 << 20
	case "g", "gb", "gib":
		mult = 1 << 30
	default:
		return 0, fmt.Errorf("size %q: unknown unit %q (want k, m or g)", s, unit)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: want a number of bytes, e.g. 1048576, 512k or 1m", s)
	}
	return n * mult, nil
}
