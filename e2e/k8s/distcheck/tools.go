//go:build tools

// Package tools only records, for `go mod tidy`, the main packages that ../build.sh compiles
// from this module: the linters that check what the project distributes (the GitHub workflows
// and the krew manifest), each pinned by go.sum.
package tools

import (
	_ "github.com/rhysd/actionlint/cmd/actionlint"
	_ "sigs.k8s.io/krew/cmd/krew"
	_ "sigs.k8s.io/krew/cmd/validate-krew-manifest"
)
