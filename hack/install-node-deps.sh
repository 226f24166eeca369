#!/usr/bin/env bash
# Installs the Debian packages the real-node testbed needs (containerd and
# ctr, runc, the CNI plugins, iptables, nftables, conntrack, iproute2), skipping the
# ones already installed. containerd is only installed, never started as a
# service: the testbed runs its own private instance. The NetworkPolicy agent
# (kube-network-policies) needs nothing more from Debian: it talks netlink
# itself and runs iptables, and the kernel's nfnetlink_queue (the testbed
# checks for /proc/net/netfilter/nfnetlink_queue) is not a package.
set -euo pipefail

packages=(containerd runc containernetworking-plugins iptables nftables conntrack iproute2)
missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-node-deps: need root to install: ${missing[*]}" >&2
	exit 1
fi
echo "install-node-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Keep package scripts from starting services (containerd) on this machine.
policy=/usr/sbin/policy-rc.d
created_policy=
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod +x "$policy"
	created_policy=1
fi
trap '[ -n "$created_policy" ] && rm -f "$policy"' EXIT
if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
	apt-get update
	apt-get install -y --no-install-recommends "${missing[@]}"
fi
