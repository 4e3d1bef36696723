#!/usr/bin/env bash
# ensure-chromium.sh - make sure Debian's Chromium is installed for the
# browser test (tests/browser). Test tools never download their own browser:
# they drive this one.
#
# Usage: scripts/ensure-chromium.sh     prints the browser's path on stdout
#
#   1. CHROMIUM_PATH if set and executable, else /usr/bin/chromium.
#   2. As root with apt-get: `apt-get install -y chromium`, then step 1.
#   3. Otherwise: say what to install and exit non-zero.
set -euo pipefail

CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}

log() { printf 'ensure-chromium: %s\n' "$*" >&2; }

if [ -x "$CHROMIUM" ]; then
	printf '%s\n' "$CHROMIUM"
	exit 0
fi

if [ -n "${CHROMIUM_PATH:-}" ]; then
	log "error: CHROMIUM_PATH=$CHROMIUM is not an executable file"
	exit 1
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
	log "$CHROMIUM is missing; installing Debian's chromium package"
	export DEBIAN_FRONTEND=noninteractive
	# A stale package list makes the install fail with 404s: update first
	# only when the plain install does not work.
	if ! apt-get install -y chromium >&2; then
		apt-get update >&2
		apt-get install -y chromium >&2
	fi
	if [ -x "$CHROMIUM" ]; then
		printf '%s\n' "$CHROMIUM"
		exit 0
	fi
	log "error: apt-get installed chromium but $CHROMIUM does not exist"
	exit 1
fi

log "error: the browser test needs Chromium at $CHROMIUM"
if command -v apt-get >/dev/null 2>&1; then
	log "  install it:  sudo apt-get install chromium"
	log "  (or re-run as root to install it automatically)"
else
	log "  install Chromium with your package manager and set CHROMIUM_PATH to its binary"
fi
exit 1
