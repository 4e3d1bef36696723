#!/usr/bin/env bash
# The browser test of the gateway's gRPC-web; see run.mjs for what it does.
# Usage: tests/browser/run.sh [--smoke] [--keep-db]   (make test-browser)
set -euo pipefail
cd "$(dirname -- "${BASH_SOURCE[0]}")"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "browser-test: Node.js 20 or newer with npm is required (apt-get install nodejs npm, or nodejs.org)" >&2
	exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
	echo "browser-test: Node.js 20 or newer is required (found $(node --version))" >&2
	exit 1
fi
# playwright-core never downloads a browser; make sure nothing else tries.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
exec node run.mjs "$@"
