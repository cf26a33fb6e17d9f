#!/bin/sh
# Make a Docker engine answer on this host (what `make test` needs for the container tests):
# when none answers, install docker.io (and debootstrap, for containers/base/build.sh) from Debian's
# packages if missing, start dockerd in the background and wait for it. See shared/reference/environment.md.
set -eu
if docker info >/dev/null 2>&1; then
    command -v debootstrap >/dev/null || { apt-get install -y -qq debootstrap >/dev/null 2>&1 || true; }
    exit 0
fi
if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
        echo "containers/engine.sh: no Docker engine answers and this is not root: install docker.io and start dockerd" >&2
        exit 1
    fi
    echo "installing docker.io and debootstrap from Debian ..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
fi
if [ "$(id -u)" != 0 ]; then
    echo "containers/engine.sh: dockerd is installed but not running, and starting it needs root" >&2
    exit 1
fi
echo "starting dockerd (log: /var/log/dockerd.log) ..."
nohup dockerd >/var/log/dockerd.log 2>&1 &
i=0
while [ $i -lt 60 ]; do
    docker info >/dev/null 2>&1 && { echo "Docker engine $(docker version --format '{{.Server.Version}}') answers"; exit 0; }
    i=$((i + 1)); sleep 1
done
echo "containers/engine.sh: dockerd did not answer within 60 s; see /var/log/dockerd.log" >&2
exit 1
