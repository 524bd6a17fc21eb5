#!/bin/sh
# Builds dnsward's .deb into OUTDIR with nfpm (through `go run`, so
# nothing is installed): the static binary, /etc/dnsward/dnsward.yaml as a
# conffile, the systemd unit, /var/lib/dnsward, and a postinst that
# creates the dnsward system user.
#   deploy/deb.sh dist 1.2.3 && sudo apt install ./dist/dnsward_1.2.3_amd64.deb
set -eu
out=${1:?usage: deploy/deb.sh OUTDIR VERSION [GOARCH]}
version=${2:?usage: deploy/deb.sh OUTDIR VERSION [GOARCH]}
arch=${3:-$(go env GOARCH)}
nfpm=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
cd "$(dirname "$0")/.."
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

CGO_ENABLED=0 GOARCH=$arch go build -trimpath -buildvcs=false \
  -ldflags "-s -w -X main.version=$version" -o "$work/dnsward" ./cmd/dnsward
# Debian wants a changelog in every package; this one points at the project.
cat >"$work/changelog" <<END
dnsward ($version) unstable; urgency=medium

  * Release $version; see the project's history for what changed.

 -- dnsward maintainers <dnsward@users.noreply.github.com>  $(date -R)
END
gzip -9n "$work/changelog"
cp --parents configs/dnsward.yaml deploy/nfpm.yaml deploy/systemd/dnsward.service \
  deploy/debian/copyright deploy/debian/lintian-overrides deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm \
  docs/deploy.md README.md "$work"
cd "$work"
DNSWARD_VERSION=$version DNSWARD_ARCH=$arch \
  go run "$nfpm" package --config deploy/nfpm.yaml --packager deb --target "$out"
