// Package version holds the build version, set at link time.
package version

// Version is set with -ldflags "-X github.com/shoal-dev/shoal/internal/version.Version=...".
var Version = "dev"
