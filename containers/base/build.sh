#!/bin/sh
# The offline base image for hosts without an image registry (shared/reference/environment.md):
# a minimal Debian bookworm root filesystem made with debootstrap, imported with `docker import`.
# Usage: containers/base/build.sh [TAG]   (default vsbench/base:bookworm; does nothing when TAG exists)
# Needs root, debootstrap and a running Docker engine; the Debian mirror is the only network it uses.
set -eu
TAG="${1:-vsbench/base:bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
if docker image inspect "$TAG" >/dev/null 2>&1; then
    echo "base image $TAG present: $(docker image inspect --format '{{.Id}}' "$TAG")"
    exit 0
fi
command -v debootstrap >/dev/null || { echo "containers/base/build.sh: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
ROOTFS="$(mktemp -d /tmp/vsbench-rootfs.XXXXXX)"
trap 'rm -rf "$ROOTFS"' EXIT
echo "debootstrap bookworm (minbase + python3) into $ROOTFS ..."
# python3 3.11 (cp311 wheels fit), venv and pip for the runtime layer; ca-certificates is not needed (no network)
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip bookworm "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 \
    || { tail -5 "$ROOTFS.log" >&2; echo "containers/base/build.sh: debootstrap failed (log $ROOTFS.log)" >&2; exit 1; }
rm -f "$ROOTFS.log"
# no package caches or apt lists in the image
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
tar --numeric-owner -C "$ROOTFS" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    --message "vsbench offline base: debootstrap minbase bookworm + python3" - "$TAG"
echo "base image $TAG: $(docker image inspect --format '{{.Id}}' "$TAG")"
