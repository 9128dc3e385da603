#!/usr/bin/env bash
# Builds the binaries of podiam's kind node image that ../k8s/build.sh does not build:
# kind itself, kubeadm and kube-proxy, containerd (+ shim, ctr), crictl, the CNI plugins,
# local-path-provisioner and the pause container's binary. All from the Go module proxy
# (modules pinned in ./go/*), except pause, which is C (gcc -static) from the Kubernetes module.
#
# Usage: build-bins.sh [VERSION_DIR]
#   VERSION_DIR defaults to ${PODIAM_CACHE:-$HOME/.cache/podiam}/kind-node-<k8s version>.
#   Binaries land in VERSION_DIR/bin/<name>; VERSION_DIR/stamps/<name> records what each was
#   built from. A binary whose file exists and whose stamp is unchanged is skipped (idempotent).
#
# Needs `go` (1.26+), `gcc` and the Go module proxy. Honours GOFLAGS (e.g. -p=1).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
go=${GO:-go}
mods=$here/go

modver() { "$go" -C "$1" list -m -f '{{.Version}}' "$2"; }
moddir() { "$go" mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p'; }

k8s_version=$(modver "$mods/kubernetes" k8s.io/kubernetes)
k8s_date=$("$go" -C "$mods/kubernetes" list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)
kind_version=$(modver "$mods/kind" sigs.k8s.io/kind)
crictl_version=$(modver "$mods/cri-tools" sigs.k8s.io/cri-tools)
cni_version=$(modver "$mods/cni-plugins" github.com/containernetworking/plugins)
lpp_version=$(modver "$mods/local-path-provisioner" github.com/rancher/local-path-provisioner)
# containerd's go.mod has exclude directives, so it cannot be a dependency of a module here
# (nor `go install`ed): it is built from a copy of its own module, with -mod=mod.
containerd_version=${CONTAINERD_VERSION:-v2.1.4}

minor=${k8s_version#v1.}; minor=${minor%%.*}
version_dir=${1:-${PODIAM_CACHE:-$HOME/.cache/podiam}/kind-node-$k8s_version}
bin_dir=$version_dir/bin
stamp_dir=$version_dir/stamps
work_dir=$version_dir/work
mkdir -p "$bin_dir" "$stamp_dir" "$work_dir"
# One build per directory at a time: .ci/run starts this in the background and `podiam-e2e
# setup` runs it again; the second waits, then finds every stamp up to date.
exec 9>"$version_dir/.build.lock"
if ! flock -n 9; then
  echo "build-bins.sh: waiting for another build of $version_dir"
  flock 9
fi

k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  k8s_ldflags+=" -X $pkg.buildDate=$k8s_date"
done

go_version=$("$go" env GOVERSION)
total_start=$(date +%s)

src_hash() { # the files pinning a module directory's build
  (cd "$1" && find go.mod go.sum -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum \
    | sha256sum | cut -d' ' -f1)
}

# fresh NAME STAMP -> 0 when bin/NAME exists and was built from STAMP
fresh() {
  [[ -x $bin_dir/$1 && -f $stamp_dir/$1 && "$(cat "$stamp_dir/$1")" == "$2" ]]
}

# build NAME MODULE_DIR PACKAGE VERSION LDFLAGS [EXTRA GO FLAGS...]
build() {
  local name=$1 dir=$2 pkg=$3 version=$4 ldflags=$5
  shift 5
  local stamp
  stamp=$(printf '%s\n' "package=$pkg" "version=$version" "source_sha256=$(src_hash "$dir")" \
    "go=$go_version" "cgo=0" "ldflags=$ldflags" "flags=$*")
  if fresh "$name" "$stamp"; then
    echo "build-bins.sh: $name $version up to date"
    return
  fi
  echo "build-bins.sh: building $name $version ..."
  local start=$(date +%s)
  rm -f "$stamp_dir/$name"
  CGO_ENABLED=0 "$go" -C "$dir" build -trimpath -buildvcs=false "$@" \
    -ldflags "$ldflags" -o "$bin_dir/$name.tmp" "$pkg"
  mv -f "$bin_dir/$name.tmp" "$bin_dir/$name"
  printf '%s\n' "$stamp" > "$stamp_dir/$name"
  echo "build-bins.sh: built $name in $(( $(date +%s) - start ))s ($(du -h "$bin_dir/$name" | cut -f1))"
}

build kind "$mods/kind" sigs.k8s.io/kind "$kind_version" "-s -w"

# containerd: copy the module (the module cache is read-only), build with -mod=mod.
containerd_src=$work_dir/containerd-$containerd_version
if [[ ! -f $containerd_src/go.mod ]]; then
  rm -rf "$containerd_src.tmp"
  cp -r "$(moddir "github.com/containerd/containerd/v2@$containerd_version")" "$containerd_src.tmp"
  chmod -R u+w "$containerd_src.tmp"
  mv "$containerd_src.tmp" "$containerd_src"
fi
containerd_ldflags="-s -w -X github.com/containerd/containerd/v2/version.Version=$containerd_version"
containerd_ldflags+=" -X github.com/containerd/containerd/v2/version.Package=github.com/containerd/containerd/v2"
for c in containerd containerd-shim-runc-v2 ctr; do
  build "$c" "$containerd_src" "./cmd/$c" "$containerd_version" "$containerd_ldflags" -mod=mod
done

build crictl "$mods/cri-tools" sigs.k8s.io/cri-tools/cmd/crictl "$crictl_version" \
  "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$crictl_version"

cni_ldflags="-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$cni_version"
for p in main/ptp main/bridge main/loopback ipam/host-local meta/portmap; do
  build "${p#*/}" "$mods/cni-plugins" "github.com/containernetworking/plugins/plugins/$p" \
    "$cni_version" "$cni_ldflags"
done

build kubeadm "$mods/kubernetes" k8s.io/kubernetes/cmd/kubeadm "$k8s_version" "$k8s_ldflags"
build kube-proxy "$mods/kubernetes" k8s.io/kubernetes/cmd/kube-proxy "$k8s_version" "$k8s_ldflags"

build local-path-provisioner "$mods/local-path-provisioner" github.com/rancher/local-path-provisioner \
  "$lpp_version" "-s -w -X main.VERSION=$lpp_version"

# pause: the sandbox container's process, C from the Kubernetes module (as upstream builds it).
pause_src=$(moddir "k8s.io/kubernetes@$k8s_version")/build/pause/linux/pause.c
pause_version=$(sed -n 's/^\s*PauseVersion = "\(.*\)"/\1/p' \
  "$(dirname "$pause_src")/../../../cmd/kubeadm/app/constants/constants.go")
pause_stamp=$(printf '%s\n' "source=k8s.io/kubernetes@$k8s_version/build/pause/linux/pause.c" \
  "source_sha256=$(sha256sum "$pause_src" | cut -d' ' -f1)" "version=$pause_version" \
  "cc=$(gcc -dumpfullversion)" "cflags=-Os -Wall -Werror -static")
if fresh pause "$pause_stamp"; then
  echo "build-bins.sh: pause $pause_version up to date"
else
  gcc -Os -Wall -Werror -static -DVERSION="v$pause_version" -o "$bin_dir/pause.tmp" "$pause_src"
  mv -f "$bin_dir/pause.tmp" "$bin_dir/pause"
  printf '%s\n' "$pause_stamp" > "$stamp_dir/pause"
  echo "build-bins.sh: built pause $pause_version"
fi

echo "build-bins.sh: done in $(( $(date +%s) - total_start ))s -> $bin_dir"
