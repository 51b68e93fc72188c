//go:build tools

// The build target is a package of the pinned module (see build.sh); this file only keeps it,
// and its dependencies, in go.mod and go.sum.
package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"
