#!/bin/sh
# Debian's chromium for the web monitor's browser tests (tests/e2e/test_web_monitor.py),
# installed with apt-get when it is missing and this is a Debian-like machine run as root.
# Elsewhere nothing is installed: the browser tests then say what to install (and fail
# under CI=true).
set -e
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
    echo "chromium not found and not installed (needs apt-get as root): install Debian's chromium for the browser tests" >&2
    exit 0
fi
echo "installing Debian's chromium for the browser tests ..." >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
