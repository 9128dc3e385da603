#!/usr/bin/env bash
# Builds podiam's kind node image in the local Docker daemon from the binaries built by
# ../k8s/build.sh and ./build-bins.sh, with no registry:
#   1. base image: Debian bookworm + systemd (mmdebstrap), Debian's runc, containerd v2, crictl,
#      CNI plugins, kind's base-image files (from the kind module) and the stand-in CNI config;
#   2. every image kind's node needs (control plane, kube-proxy, etcd, CoreDNS, pause,
#      local-path-provisioner and its helper, a placeholder for kindnetd), built FROM scratch or
#      a small rootfs and saved into a kubernetes-server-style tarball;
#   3. `kind build node-image --type file TARBALL --base-image BASE`, which then pulls nothing;
#   4. the final image: kind's default CNI manifest replaced, labelled with the inputs' hash.
#
# Usage: build-image.sh inputs|build TAG KIND_BIN_DIR K8S_BIN_DIR WORK_DIR
#   inputs: prints the hash of everything the image is built from (no Docker needed).
#   build:  builds TAG (labelled podiam.inputs=<that hash>).
# Needs docker (a running daemon whose default runtime runs privileged containers), mmdebstrap,
# jq, busybox-static (/usr/bin/busybox), go (to locate the kind module's base-image files).
set -euo pipefail

mode=$1 tag=$2 bin=$3 k8s_bin=$4 work=$5
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
go=${GO:-go}
suite=bookworm
# kind's base image's packages (images/base/Dockerfile), less nfs/iscsi, plus Debian's runc.
base_packages=systemd,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,fuse-overlayfs,bash,ca-certificates,curl,jq,procps,runc
# kube-proxy's image: what it executes.
proxy_packages=iptables,conntrack,ipset,kmod

log() { echo "build-image.sh: $*" >&2; }
# Docker 20.10 has no BuildKit here; say so, which also silences newer clients' notice.
export DOCKER_BUILDKIT=0
k8s_version=$("$k8s_bin/kubectl" version --client -o json | jq -r .clientVersion.gitVersion)
kind_dir=$("$go" -C "$here/go/kind" list -m -f '{{.Dir}}' sigs.k8s.io/kind)
if [[ ! -d $kind_dir ]]; then
  "$go" -C "$here/go/kind" mod download sigs.k8s.io/kind
  kind_dir=$("$go" -C "$here/go/kind" list -m -f '{{.Dir}}' sigs.k8s.io/kind)
fi

inputs_hash() {
  {
    echo "suite=$suite base=$base_packages proxy=$proxy_packages k8s=$k8s_version"
    sha256sum "$here"/build-image.sh "$here"/iptables-wrapper.sh "$here"/standin-cni.conflist \
      "$here"/default-cni.yaml | cut -d' ' -f1
    for n in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl etcd coredns; do
      echo "$n"; cat "$k8s_bin/../stamps/$n"
    done
    for f in "$bin"/../stamps/*; do echo "${f##*/}"; cat "$f"; done
    echo "busybox=$(sha256sum /usr/bin/busybox | cut -d' ' -f1)"
  } | sha256sum | cut -d' ' -f1
}

if [[ $mode == inputs ]]; then inputs_hash; exit 0; fi
[[ $mode == build ]] || { echo "usage: $0 inputs|build TAG KIND_BIN_DIR K8S_BIN_DIR WORK_DIR" >&2; exit 2; }

inputs=$(inputs_hash)
mkdir -p "$work"
# docker_build TAG CONTEXT: its stderr only when it fails (the client's legacy-builder notice otherwise).
docker_build() {
  docker build -q -t "$1" "$2" >/dev/null 2>"$work/docker-build.err" \
    || { cat "$work/docker-build.err" >&2; return 1; }
}
previous=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
start=$(date +%s)
step() { log "$1 done in $(( $(date +%s) - step_start ))s"; step_start=$(date +%s); }
step_start=$start

# --- root filesystems (mmdebstrap), cached by their package lists -------------------------
rootfs() { # rootfs NAME PACKAGES -> prints the path of NAME's rootfs tarball
  local name=$1 packages=$2
  local key
  key=$(echo "$suite $packages $(mmdebstrap --version)" | sha256sum | cut -c1-16)
  local out=$work/rootfs-$name-$key.tar
  if [[ ! -f $out ]]; then
    log "mmdebstrap $suite ($name: $packages) ..."
    mmdebstrap --quiet --variant=minbase --mode=root --format=tar --include="$packages" \
      "$suite" "$out.tmp" >&2
    mv "$out.tmp" "$out"
  fi
  echo "$out"
}
# The two are independent (mostly downloads and unpacking): build them side by side.
rootfs node "$base_packages" >/dev/null &
node_job=$!
rootfs kube-proxy "$proxy_packages" >/dev/null
wait "$node_job"
base_tar=$(rootfs node "$base_packages")
proxy_rootfs=$(rootfs kube-proxy "$proxy_packages")
step "root filesystems"

# --- 1. base image ---------------------------------------------------------------------------
base_tag=podiam.local/kind-base:$k8s_version-${inputs:0:12}
if ! docker image inspect "$base_tag" >/dev/null 2>&1; then
  ctx=$work/base-ctx
  rm -rf "$ctx" && mkdir -p "$ctx/root"
  tar -C "$ctx/root" -xf "$base_tar"
  r=$ctx/root
  cp -a "$kind_dir/images/base/files/." "$r/"
  chmod -R u+w "$r/etc" "$r/kind" "$r/usr/local/bin" "$r/LICENSES"
  chmod 0755 "$r/usr/local/bin/"* "$r/kind/bin" "$r/kind/bin/"*
  # This VM withholds CAP_SYS_RESOURCE, so runc cannot set a sandbox's oom_score_adj.
  # The sandbox image is the pause version kubeadm expects (built below).
  pause_version=$(sed -n 's/^version=//p' "$bin/../stamps/pause")
  sed -i -e 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' \
    -e "s#sandbox_image = .*#sandbox_image = \"registry.k8s.io/pause:$pause_version\"#" \
    "$r/etc/containerd/config.toml"
  grep -q 'restrict_oom_score_adj = true' "$r/etc/containerd/config.toml"
  install -m 0755 "$bin"/containerd "$bin"/containerd-shim-runc-v2 "$bin"/ctr "$bin"/crictl \
    "$r/usr/local/bin/"
  mkdir -p "$r/opt/cni/bin" "$r/etc/cni/net.d" "$r/etc/kubernetes/manifests"
  install -m 0755 "$bin"/ptp "$bin"/host-local "$bin"/loopback "$bin"/portmap "$r/opt/cni/bin/"
  install -m 0644 "$here/standin-cni.conflist" "$r/etc/cni/net.d/10-podiam-standin.conflist"
  "$bin/ctr" oci spec \
    | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
    | jq 'del(.process.rlimits)' > "$r/etc/containerd/cri-base.json"
  # As kind's Dockerfile: no tmpfiles-setup, no default wants, no kmsg for journald.
  rm -f "$r"/lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service \
    "$r"/lib/systemd/system/multi-user.target.wants/* "$r"/etc/systemd/system/*.wants/* \
    "$r"/lib/systemd/system/local-fs.target.wants/* "$r"/lib/systemd/system/sockets.target.wants/*udev* \
    "$r"/lib/systemd/system/sockets.target.wants/*initctl* "$r"/lib/systemd/system/basic.target.wants/*
  echo "ReadKMsg=no" >> "$r/etc/systemd/journald.conf"
  ln -sf /lib/systemd/systemd "$r/sbin/init"
  chroot "$r" systemctl enable kubelet.service containerd.service undo-mount-hacks.service >&2
  chroot "$r" systemctl mask systemd-binfmt.service >&2
  tar -C "$r" -cf "$ctx/rootfs.tar" .
  rm -rf "$r"
  # Docker 20.10's `import --change STOPSIGNAL` is refused: a Dockerfile sets the config.
  cat > "$ctx/Dockerfile" <<'EOF'
FROM scratch
ADD rootfs.tar /
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]
EOF
  docker_build "$base_tag" "$ctx"
  rm -rf "$ctx"
fi
step "base image $base_tag"

# --- 2. the node's images ----------------------------------------------------------------------
img=$work/images
rm -rf "$img" && mkdir -p "$img"
# image TAG DOCKERFILE [FILE...]: builds TAG from a context holding the files.
image() {
  local t=$1 dockerfile=$2 ctx
  shift 2
  ctx=$(mktemp -d "$img/ctx.XXXX")
  [[ $# -gt 0 ]] && cp -a "$@" "$ctx/"
  printf '%s\n' "$dockerfile" > "$ctx/Dockerfile"
  docker_build "$t" "$ctx"
  rm -rf "$ctx"
}
mapfile -t required < <("$bin/kubeadm" config images list --kubernetes-version "$k8s_version")
ref() { printf '%s\n' "${required[@]}" | grep -m1 "/$1:" ; }
kindnetd=$(sed -n 's/^const kindnetdImage = "\(.*\)"/\1/p' "$kind_dir/pkg/build/nodeimage/const_cni.go")
lpp=$(sed -n 's/^const storageProvisionerImage = "\(.*\)"/\1/p' "$kind_dir/pkg/build/nodeimage/const_storage.go")
lpp_helper=$(sed -n 's/^const storageHelperImage = "\(.*\)"/\1/p' "$kind_dir/pkg/build/nodeimage/const_storage.go")
label="LABEL podiam.built-by=e2e/kind-image/build-image.sh"

busybox_tag=podiam.local/busybox:static
image "$busybox_tag" "FROM scratch
COPY busybox /bin/busybox
RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]
ENV PATH=/bin
$label" /usr/bin/busybox

for c in kube-apiserver kube-controller-manager kube-scheduler; do
  image "$(ref "$c")" "FROM scratch
COPY $c /usr/local/bin/$c
ENV PATH=/usr/local/bin
$label" "$k8s_bin/$c"
done
proxy_ctx=$(mktemp -d "$img/proxy.XXXX")
mkdir -p "$proxy_ctx/root" && tar -C "$proxy_ctx/root" -xf "$proxy_rootfs"
install -m 0755 "$bin/kube-proxy" "$proxy_ctx/root/usr/local/bin/kube-proxy"
install -m 0755 "$here/iptables-wrapper.sh" "$proxy_ctx/root/usr/sbin/iptables-wrapper"
for t in iptables ip6tables; do
  for v in "" -save -restore; do ln -sf iptables-wrapper "$proxy_ctx/root/usr/sbin/$t$v"; done
done
tar -C "$proxy_ctx/root" -cf "$proxy_ctx/rootfs.tar" . && rm -rf "$proxy_ctx/root"
printf 'FROM scratch\nADD rootfs.tar /\nENV PATH=%s\n%s\n' \
  /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$label" > "$proxy_ctx/Dockerfile"
docker_build "$(ref kube-proxy)" "$proxy_ctx"
rm -rf "$proxy_ctx"

image "$(ref etcd)" "FROM scratch
COPY etcd /usr/local/bin/etcd
ENV PATH=/usr/local/bin
$label" "$k8s_bin/etcd"
image "$(ref coredns)" "FROM scratch
COPY coredns /coredns
ENTRYPOINT [\"/coredns\"]
$label" "$k8s_bin/coredns"
image "$(ref pause)" "FROM scratch
COPY pause /pause
ENTRYPOINT [\"/pause\"]
$label" "$bin/pause"
image "$lpp_helper" "FROM $busybox_tag
$label"
image "$lpp" "FROM $busybox_tag
COPY local-path-provisioner /usr/bin/local-path-provisioner
ENV PATH=/usr/bin:/bin
$label" "$bin/local-path-provisioner"
image "$kindnetd" "FROM $busybox_tag
CMD [\"sh\", \"-c\", \"echo 'podiam: kindnetd is not in this node image; the stand-in CNI config /etc/cni/net.d/10-podiam-standin.conflist networks the node' >&2; exit 1\"]
$label"
step "component images"

# --- 3. kubernetes-server-style tarball and `kind build node-image` ---------------------------
srv=$img/kubernetes/server/bin
mkdir -p "$srv"
echo "$k8s_version" > "$img/kubernetes/version"
install -m 0755 "$bin/kubeadm" "$k8s_bin/kubelet" "$k8s_bin/kubectl" "$srv/"
for c in kube-apiserver kube-controller-manager kube-scheduler; do
  docker save -o "$srv/$c.tar" "$(ref "$c")"
done
# kind reads each archive's tags from the first of manifest.json/repositories it meets and
# loads every image in it; it compares them with fully qualified names (docker.io/...), which
# docker save shortens. So kube-proxy.tar carries the other images too, and a `repositories`
# entry written first, with the names qualified.
extra=("$(ref kube-proxy)" "$(ref etcd)" "$(ref coredns)" "$(ref pause)" "$lpp" "$lpp_helper" "$kindnetd")
x=$img/kube-proxy-archive
mkdir -p "$x"
docker save "${extra[@]}" | tar -C "$x" -xf -
jq 'with_entries(if (.key | split("/")[0] | test("[.:]")) then . else .key = "docker.io/" + .key end)' \
  "$x/repositories" > "$x/repositories.q" && mv "$x/repositories.q" "$x/repositories"
(cd "$x" && tar -cf "$srv/kube-proxy.tar" repositories manifest.json \
  $(ls -A | grep -vxE 'repositories|manifest.json'))
rm -rf "$x"
tar -C "$img" -czf "$img/kubernetes-server-linux-amd64.tar.gz" kubernetes
rm -rf "$img/kubernetes"
step "server tarball"

raw_tag=podiam.local/kind-node-unpatched:$k8s_version
"$bin/kind" build node-image --type file "$img/kubernetes-server-linux-amd64.tar.gz" \
  --base-image "$base_tag" --image "$raw_tag" >&2
step "kind build node-image"

# --- 4. the final image ------------------------------------------------------------------------
ctx=$(mktemp -d "$img/final.XXXX")
cp "$here/default-cni.yaml" "$ctx/"
cat > "$ctx/Dockerfile" <<EOF
FROM $raw_tag
COPY default-cni.yaml /kind/manifests/default-cni.yaml
LABEL podiam.inputs=$inputs podiam.kubernetes=$k8s_version
EOF
docker_build "$tag" "$ctx"
rm -rf "$img"
# What is in the node image need not stay in Docker: the intermediate images, the image this
# one replaces, base images of other inputs. The busybox image stays (the smoke test loads it).
docker rmi "$raw_tag" "${extra[@]}" >/dev/null 2>&1 || true
for c in kube-apiserver kube-controller-manager kube-scheduler; do docker rmi "$(ref "$c")" >/dev/null 2>&1 || true; done
current=$(docker image inspect --format '{{.Id}}' "$tag")
if [[ -n $previous && $previous != "$current" ]]; then docker rmi "$previous" >/dev/null 2>&1 || true; fi
docker images --format '{{.Repository}}:{{.Tag}}' podiam.local/kind-base | grep -vxF "$base_tag" \
  | xargs -r docker rmi >/dev/null 2>&1 || true
step "final image $tag"
log "built $tag in $(( $(date +%s) - start ))s"
