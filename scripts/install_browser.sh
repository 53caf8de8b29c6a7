#!/usr/bin/env bash
# Debian's Chromium and chromedriver for the browser test (tests/deploy/test_serving_e2e.py).
# Does nothing when /usr/bin/chromium is there; uses sudo only when not root.
# Playwright only drives this browser: never run `playwright install` (it downloads its own).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q chromium chromium-driver
/usr/bin/chromium --version
