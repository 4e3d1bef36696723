#!/usr/bin/env bash
# The ERP client test (make test-erp): run_test.py from a virtualenv of its
# own (grpcio, grpcio-tools), created or updated when requirements.txt changes.
set -euo pipefail
here=$(cd "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
venv=${RAPPORT_ERP_VENV:-$HOME/.cache/rapport/venv-erp}
python=${PYTHON:-python3}

command -v psql >/dev/null || { echo "erp-test: psql (PostgreSQL's client) is needed to create the test database" >&2; exit 1; }

if ! cmp -s "$here/requirements.txt" "$venv/requirements.txt" 2>/dev/null; then
    echo "erp-test: preparing $venv" >&2
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    cp "$here/requirements.txt" "$venv/requirements.txt"
fi
exec "$venv/bin/python" "$here/run_test.py" "$@"
