#!/usr/bin/env bash
# The browser tests drive Debian's chromium (never `playwright install`, which downloads a browser). They are part of
# the suite: when the browser is absent and cannot be installed here, this says why and exits 1, so `make test` stops.
set -euo pipefail
CHROMIUM="${EMNIST_CHROMIUM:-/usr/bin/chromium}"  # the path tests/browser_support.py drives
if [ -x "$CHROMIUM" ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser tests"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  if [ -x "$CHROMIUM" ]; then exit 0; fi
  echo "apt-get installed chromium, but $CHROMIUM is still absent: the browser tests cannot run" >&2
  exit 1
fi
echo "the browser tests need Debian's chromium at $CHROMIUM, which is not installed and cannot be installed here" \
     "(needs root and apt-get): run 'apt-get install -y chromium' as root, then make test again" >&2
exit 1
