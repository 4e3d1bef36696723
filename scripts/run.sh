#!/usr/bin/env bash
# make run: PostgreSQL and Redis (started if missing), migrations, then every
# service in the foreground. ctrl-c stops it cleanly.
set -euo pipefail
cd "$(dirname -- "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rapport/target}

env=$(scripts/ensure-services.sh) && eval "$env"
# The public development signing key, for local use only: a service
# without RAPPORT_DEV_MODE and without a configured key refuses to start.
export RAPPORT_DEV_MODE=${RAPPORT_DEV_MODE:-true}
echo "database: $DATABASE_URL" >&2
echo "redis:    $REDIS_URL" >&2

cargo build --locked -p rapport >&2
rapport="$CARGO_TARGET_DIR/debug/rapport"
"$rapport" migrate all >&2

token=$("$rapport" dev-token --role admin --subject dev-admin)
cat <<MSG

An admin token for local calls (valid 12h; mint others with
  $rapport dev-token --role sales_rep --subject alice):

export TOKEN=$token

Try:  grpcurl -plaintext -H "authorization: Bearer \$TOKEN" 127.0.0.1:50050 list

MSG
# A frontend dev server on any local port may call the gateway over
# gRPC-web; deployed defaults (the chart) allow no origin unless told.
export GATEWAY_CORS_ORIGINS=${GATEWAY_CORS_ORIGINS:-http://localhost:*,http://127.0.0.1:*}
echo "gRPC-web origins: $GATEWAY_CORS_ORIGINS" >&2
exec "$rapport" serve all
