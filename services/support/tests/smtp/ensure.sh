#!/usr/bin/env bash
# Prints the Python of a virtualenv holding aiosmtpd (requirements.txt),
# creating or updating it first; safe to run from concurrent tests.
set -euo pipefail
here=$(cd "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
venv=${RAPPORT_SMTP_VENV:-$HOME/.cache/rapport/venv-smtp}
mkdir -p "$(dirname -- "$venv")"
exec 9>"$venv.lock"
flock 9
if ! cmp -s "$here/requirements.txt" "$venv/requirements.txt" 2>/dev/null; then
    echo "smtp sink: preparing $venv" >&2
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
    cp "$here/requirements.txt" "$venv/requirements.txt"
fi
echo "$venv/bin/python"
