#!/usr/bin/env bash
# Runs the chart checks (test_chart.py) from a virtualenv of their own,
# created or updated when requirements.txt changes.
#   helm/tests/run.sh              lint, render, validate, drift of k8s/
#   helm/tests/run.sh --write-k8s  regenerate k8s/ from the chart (make k8s)
set -euo pipefail
here=$(cd "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
venv=${RAPPORT_DEPLOY_VENV:-$HOME/.cache/rapport/venv-deploy}
python=${PYTHON:-python3}

if ! cmp -s "$here/requirements.txt" "$venv/requirements.txt" 2>/dev/null; then
    echo "deploy checks: preparing $venv" >&2
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    cp "$here/requirements.txt" "$venv/requirements.txt"
fi

if [ "${1:-}" = "--write-k8s" ]; then
    exec "$venv/bin/python" "$here/chart.py" --write-k8s
fi
exec "$venv/bin/python" "$here/test_chart.py" "$@"
