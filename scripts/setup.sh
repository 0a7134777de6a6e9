#!/usr/bin/env bash
# Sets up a Debian/Ubuntu machine for tswg: system packages, npm dependencies (which build the
# native addon) and the TypeScript build. Run as root from the repository.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends: wireguard-tools would otherwise pull in a kernel image.
apt-get install -y -qq --no-install-recommends \
  wireguard-go wireguard-tools iproute2 iputils-ping iperf3 nftables procps nginx openssl nats-server coturn \
  liblwip-dev curl systemd qemu-system-x86 busybox-static kmod xz-utils iptables conntrack >/dev/null

# A checkout wants the addon: a failed build fails the set-up (an installed package would go on without it).
TSWG_REQUIRE_NATIVE=1 npm ci --no-audit --no-fund
npm run build
