#!/bin/sh
# kube-proxy's iptables in podiam's kind node image. kube-proxy runs in the node's network
# namespace, whose rules the node's entrypoint put in one backend (legacy or nft, whichever
# already held Docker's rules). On its first call this picks the same backend (the one with more
# rules), points the iptables alternatives and links at it, and runs the command; later calls
# run the chosen backend directly.
set -eu
legacy=$( (iptables-legacy-save || true; ip6tables-legacy-save || true) 2>/dev/null | grep -c '^-' || true)
nft=$( (timeout 5 sh -c "iptables-nft-save; ip6tables-nft-save" || true) 2>/dev/null | grep -c '^-' || true)
mode=nft
if [ "$legacy" -gt "$nft" ]; then mode=legacy; fi
for t in iptables ip6tables; do
  update-alternatives --set "$t" "/usr/sbin/$t-$mode" >/dev/null
  for v in "" -save -restore; do ln -sf "/etc/alternatives/$t$v" "/usr/sbin/$t$v"; done
done
exec "$0" "$@"
