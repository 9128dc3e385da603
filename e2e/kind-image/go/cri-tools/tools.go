//go:build tools

// Package tools only records, for `go mod tidy`, the main packages that
// ../../build-bins.sh compiles from this module.
package tools

import (
	_ "sigs.k8s.io/cri-tools/cmd/crictl"
)
