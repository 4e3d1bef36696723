#!/usr/bin/env bash
# image-build-stage.sh - the Dockerfile's build stage without Docker: the
# files `docker build .` would send (scripts/image_context.py, per
# .dockerignore) are synced to $CARGO_TARGET_DIR/image-context, and the
# Dockerfile's own cargo command runs there as it does in the image: no
# database, SQLX_OFFLINE=true. Then the binary must answer `--version`.
# Part of `make test-deploy` (and so of CI); `make image` needs an engine.
set -euo pipefail
cd "$(dirname -- "${BASH_SOURCE[0]}")/.."

log() { printf 'image-build-stage: %s\n' "$*" >&2; }

# The cargo command of the Dockerfile's RUN (one line, up to `\` or `&&`).
mapfile -t commands < <(grep -oE '^[[:space:]]*cargo build[^\\&]*' Dockerfile | sed -E 's/^[[:space:]]+//; s/[[:space:]]+$//')
if [ "${#commands[@]}" -ne 1 ]; then
	log "error: expected one 'cargo build' line in the Dockerfile, found ${#commands[@]}"
	exit 1
fi
read -r -a command <<<"${commands[0]}"

target=${CARGO_TARGET_DIR:-$HOME/.cache/rapport/target}
context=$target/image-context
python3 scripts/image_context.py sync "$context"
log "running '${commands[0]}' in the build context ($context)"
started=$SECONDS
(cd "$context" && env -u DATABASE_URL SQLX_OFFLINE=true CARGO_TARGET_DIR="$target" "${command[@]}")
log "built in $((SECONDS - started))s"
"$target/release/rapport" --version
