#!/bin/sh
# Lays out what the container image holds, in OUTDIR/rootfs: the static
# dnsward binary (CAP_NET_BIND_SERVICE as a file capability, so the
# non-root user binds port 53 without any sysctl), CA certificates, the
# user's passwd entry and the config; and OUTDIR/state, the empty state
# directory the Dockerfile copies with the user's ownership.
#
# docker/Dockerfile runs it in its golang build stage. Without a registry,
# run it as root (setcap needs CAP_SETFCAP) on a Debian or Ubuntu host with
# Go and libcap2-bin, then build the "offline" target from OUTDIR:
#   sudo docker/rootfs.sh /tmp/dnsward-image v1.2.3
#   podman build --format docker --target offline -f docker/Dockerfile /tmp/dnsward-image
set -eu
dir=${1:?usage: docker/rootfs.sh OUTDIR [VERSION]}
version=${2:-dev}
uid=65532 # the same non-root uid as distroless' "nonroot"
cd "$(dirname "$0")/.."

out=$dir/rootfs
mkdir -p "$out/usr/local/bin" "$out/etc/dnsward" "$out/etc/ssl/certs" "$out/var/lib" "$dir/state"
CGO_ENABLED=0 go build -trimpath -buildvcs=false \
  -ldflags "-s -w -X main.version=$version" -o "$out/usr/local/bin/dnsward" ./cmd/dnsward
setcap cap_net_bind_service=+ep "$out/usr/local/bin/dnsward"
cp /etc/ssl/certs/ca-certificates.crt "$out/etc/ssl/certs/ca-certificates.crt"
cp docker/dnsward.yaml "$out/etc/dnsward/dnsward.yaml"
printf 'root:x:0:0:root:/:/sbin/nologin\ndnsward:x:%s:%s:dnsward:/var/lib/dnsward:/sbin/nologin\n' $uid $uid >"$out/etc/passwd"
printf 'root:x:0:\ndnsward:x:%s:\n' $uid >"$out/etc/group"
chmod 0644 "$out/etc/passwd" "$out/etc/group" "$out/etc/dnsward/dnsward.yaml" "$out/etc/ssl/certs/ca-certificates.crt"
