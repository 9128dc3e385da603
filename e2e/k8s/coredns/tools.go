//go:build tools

// Package tools only records, for `go mod tidy`, the main package that
// ../build.sh compiles from this module.
package tools

import (
	_ "github.com/coredns/coredns"
)
