#!/usr/bin/env bash
# The browser tests drive Chromium at /usr/bin/chromium. Install it when it is missing and this user may
# (root with apt-get); otherwise stop at once with the one command to run, before any test starts.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Chromium is missing: installing it with apt-get (the browser tests need it)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q chromium >/dev/null
  exit 0
fi
echo "make test: the browser tests need Chromium at /usr/bin/chromium. Fix: sudo apt-get install chromium" >&2
exit 1
