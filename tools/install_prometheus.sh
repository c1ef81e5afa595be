#!/usr/bin/env bash
# Install a real Prometheus for the tests, project-locally, without starting any service:
# Debian's `prometheus` package is downloaded with apt-get and unpacked with dpkg-deb into
# .cache/prometheus (the binary is .cache/prometheus/usr/bin/prometheus). Nothing is installed
# system-wide and no maintainer script runs. Idempotent: does nothing when the binary is there.
#
#   tools/install_prometheus.sh            # `make test` runs it
#   PROMETHEUS_DIR=/opt/prom tools/install_prometheus.sh
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${PROMETHEUS_DIR:-$root/.cache/prometheus}"
bin="$dest/usr/bin/prometheus"

if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
    exit 0
fi

for tool in apt-get dpkg-deb; do
    if ! command -v "$tool" >/dev/null; then
        echo "install_prometheus: $tool not found (a Debian-based machine is needed)" >&2
        exit 1
    fi
done

work="$(mktemp -d)"
trap 'rm -rf "$work" "$dest.partial"' EXIT
if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then
    chown _apt "$work"  # apt downloads as its unprivileged _apt user
fi

download() { (cd "$work" && apt-get download -q prometheus); }

if ! download; then
    # a fresh machine has no (or stale) package lists
    echo "install_prometheus: refreshing the package lists (apt-get update)" >&2
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -q
    else
        sudo -n apt-get update -q
    fi
    download
fi

mkdir -p "$(dirname "$dest")"
rm -rf "$dest.partial"
dpkg-deb -x "$work"/prometheus_*.deb "$dest.partial"
"$dest.partial/usr/bin/prometheus" --version >/dev/null
rm -rf "$dest"
mv "$dest.partial" "$dest"
echo "install_prometheus: $("$bin" --version 2>&1 | head -n 1) at $bin" >&2
