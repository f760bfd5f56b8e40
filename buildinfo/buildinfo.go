// Package buildinfo says which build of prefork is running.
//
// The version is set at build time:
//
//	go build -ldflags "-X github.com/prefork/prefork/buildinfo.Version=v1.4.0" .
//
// Without it, Version() falls back to the module version Go recorded (a
// tagged `go install`), then to the VCS revision, then to "dev". The master
// logs it, names it in systemd's STATUS= and in prefork_build_info, and an
// upgrade in place (USR2) reports the version it came from and the one it
// went to.
package buildinfo

import "runtime/debug"

// Version is the release version, set with -ldflags -X; empty means "not
// set" (see Version()).
var Version string

// Set reports whether Version was set at build time.
func Set() bool { return Version != "" }

// String returns the version of this build: Version if set, else the module
// version, else "dev-" and the first 12 characters of the VCS revision, else
// "dev".
func String() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && s.Value != "" {
			r := s.Value
			if len(r) > 12 {
				r = r[:12]
			}
			return "dev-" + r
		}
	}
	return "dev"
}

// Revision is the VCS revision Go recorded, or "unknown".
func Revision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}
