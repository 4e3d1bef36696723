#!/usr/bin/env bash
# image-build-stage.sh - the Dockerfile's build stage without Docker: the
# files `docker build .` would send (scripts/image_context.py, per
# .dockerignore) are synced to $CARGO_TARGET_DIR/image-context, and the
# Dockerfile's own cargo command runs there as it does in the image: no
# database, SQLX_OFFLINE=true. Then the binary must answer `--version`.
#
# A build context, toolchain and command that already built successfully
# are not built again (a fresh clone's new file times would otherwise make
# cargo rebuild the workspace, minutes on two cores): the stamp
# $CARGO_TARGET_DIR/image-context.built holds their digest.
# IMAGE_BUILD_STAGE_FORCE=1 builds anyway.
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
stamp=$target/image-context.built
digest=$({ python3 scripts/image_context.py digest; rustc -vV; printf '%s\n' "${commands[0]}"; } | sha256sum | cut -d' ' -f1)
if [ "${IMAGE_BUILD_STAGE_FORCE:-0}" != 1 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ] \
	&& [ -x "$target/release/rapport" ]; then
	log "this build context already built with '${commands[0]}' (stamp $digest); IMAGE_BUILD_STAGE_FORCE=1 builds again"
	exit 0
fi

python3 scripts/image_context.py sync "$context"
log "running '${commands[0]}' in the build context ($context)"
started=$SECONDS
(cd "$context" && env -u DATABASE_URL SQLX_OFFLINE=true CARGO_TARGET_DIR="$target" "${command[@]}")
log "built in $((SECONDS - started))s"
"$target/release/rapport" --version
printf '%s\n' "$digest" >"$stamp"
