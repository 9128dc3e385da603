#!/usr/bin/env bash
# Builds the pinned Kubernetes, etcd and CoreDNS binaries, and the distribution linters
# (actionlint, krew's validate-krew-manifest), for the e2e harness from the Go modules in this directory.
#
# Usage: build.sh [VERSION_DIR]
#   VERSION_DIR defaults to ${PODIAM_CACHE:-$HOME/.cache/podiam}/k8s-<k8s version>
#   Binaries land in VERSION_DIR/bin/<name>; VERSION_DIR/stamps/<name> records
#   what each was built from (module, version, go.sum hash, Go version, flags).
#   A binary whose file exists and whose stamp is unchanged is skipped, so
#   re-running is cheap and idempotent.
#
# Needs only `go` (1.26+) and the Go module proxy. Honours GOFLAGS (e.g.
# GOFLAGS=-p=1 on a busy 2-core machine); run it under `nice -n 19` there.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
go=${GO:-go}

modver() { # modver MODULE_DIR MODULE_PATH -> version required in that module
  "$go" -C "$1" list -m -f '{{.Version}}' "$2"
}

k8s_version=$(modver "$here" k8s.io/kubernetes)              # v1.34.4
k8s_date=$("$go" -C "$here" list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)
etcd_version=$(modver "$here/etcd" go.etcd.io/etcd/server/v3)
coredns_version=$(modver "$here/coredns" github.com/coredns/coredns)
actionlint_version=$(modver "$here/distcheck" github.com/rhysd/actionlint)
krew_version=$(modver "$here/distcheck" sigs.k8s.io/krew)

minor=${k8s_version#v1.}; minor=${minor%%.*}
version_dir=${1:-${PODIAM_CACHE:-$HOME/.cache/podiam}/k8s-$k8s_version}
bin_dir=$version_dir/bin
stamp_dir=$version_dir/stamps
mkdir -p "$bin_dir" "$stamp_dir"
# One build per directory at a time: .ci/run starts this in the background and `podiam-e2e
# setup` runs it again; the second waits, then finds every stamp up to date.
exec 9>"$version_dir/.build.lock"
if ! flock -n 9; then
  echo "build.sh: waiting for another build of $version_dir"
  flock 9
fi

# Same version variables as upstream's hack/lib/version.sh. kube-apiserver
# derives its binary/emulation version from gitVersion, so it must be set.
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  k8s_ldflags+=" -X $pkg.buildDate=$k8s_date"
done
etcd_ldflags="-s -w"

go_version=$("$go" env GOVERSION)
total_start=$(date +%s)

# build NAME MODULE_DIR PACKAGE VERSION LDFLAGS
build() {
  local name=$1 dir=$2 pkg=$3 version=$4 ldflags=$5
  local out=$bin_dir/$name stamp_file=$stamp_dir/$name
  local src_hash
  # go.sum pins every dependency; go.mod carries the replaces.
  src_hash=$(cd "$dir" && find go.mod go.sum -type f -print0 \
    | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
  local stamp
  stamp=$(printf '%s\n' "package=$pkg" "version=$version" "source_sha256=$src_hash" \
    "go=$go_version" "cgo=0" "ldflags=$ldflags")
  if [[ -x $out && -f $stamp_file && "$(cat "$stamp_file")" == "$stamp" ]]; then
    echo "build.sh: $name $version up to date"
    return
  fi
  echo "build.sh: building $name $version ..."
  local start=$(date +%s)
  rm -f "$stamp_file"
  CGO_ENABLED=0 "$go" -C "$dir" build -trimpath -buildvcs=false \
    -ldflags "$ldflags" -o "$out.tmp" "$pkg"
  mv -f "$out.tmp" "$out"
  printf '%s\n' "$stamp" > "$stamp_file"
  echo "build.sh: built $name in $(( $(date +%s) - start ))s ($(du -h "$out" | cut -f1))"
}

for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl; do
  build "$c" "$here" "k8s.io/kubernetes/cmd/$c" "$k8s_version" "$k8s_ldflags"
done
build etcd "$here/etcd" go.etcd.io/etcd/server/v3 "$etcd_version" "$etcd_ldflags"
# The cluster's DNS Service, as on EKS/GKE/AKS: pods resolve the clouds' real names through it.
build coredns "$here/coredns" github.com/coredns/coredns "$coredns_version" "-s -w"
# What checks the project's distribution (scripts/check-distribution): the GitHub workflows
# and the krew manifest, linted by the tools their ecosystems use.
build actionlint "$here/distcheck" github.com/rhysd/actionlint/cmd/actionlint "$actionlint_version" "-s -w"
build validate-krew-manifest "$here/distcheck" sigs.k8s.io/krew/cmd/validate-krew-manifest "$krew_version" "-s -w"
# The validator installs the plugin with `kubectl krew`: krew itself, as kubectl-krew.
build kubectl-krew "$here/distcheck" sigs.k8s.io/krew/cmd/krew "$krew_version" "-s -w"
# amazon-eks-pod-identity-webhook is not built here: the Go module proxy answers
# "403 This module version is not available" for github.com/aws/amazon-eks-pod-identity-webhook,
# and its source may not be vendored into this repository.

echo "build.sh: done in $(( $(date +%s) - total_start ))s -> $bin_dir"
