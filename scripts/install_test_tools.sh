#!/bin/sh
# What the test suite needs besides pip packages, from Debian/Ubuntu packages (apt-get; sudo when
# not root), installed only when missing:
#   chromium + chromium-driver  the browser test (tests/deploy/test_serving_e2e.py)
#   dash                        the shell tests (tests/test_scripts.py run the scripts the way `sh` does on Debian)
# Playwright only drives this browser: never run `playwright install` (it downloads its own).
set -eu
packages=""
if [ ! -x /usr/bin/chromium ]; then
  packages="chromium chromium-driver"
fi
if ! command -v dash >/dev/null 2>&1; then
  packages="$packages dash"
fi
if [ -z "$packages" ]; then
  echo "test tools already installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium), $(command -v dash)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086  # the package list is split on purpose
$SUDO apt-get install -y -q $packages
/usr/bin/chromium --version
