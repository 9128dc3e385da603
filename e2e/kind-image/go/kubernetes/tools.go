//go:build tools

// Package tools only records, for `go mod tidy`, the main packages that
// ../../build-bins.sh compiles from this module: the node binaries kind's node
// image needs beyond what ../../../k8s builds. A module of its own so that the
// go.sum stamping ../../../k8s's binaries does not change (which would rebuild them all).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kubeadm"
)
