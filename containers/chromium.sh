#!/bin/sh
# A headless Chromium and its WebDriver for the published-site test (what `make test` needs): installed from
# Debian's packages when missing (shared/reference/environment.md). Prints the chromium binary's path.
set -eu
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    command -v chromium
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "containers/chromium.sh: chromium or chromedriver is missing and installing needs root (apt-get install chromium chromium-driver)" >&2
    exit 1
fi
echo "installing chromium and chromium-driver from Debian ..." >&2
apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
command -v chromium
