#!/usr/bin/env bash
# Create .venv, install the pinned requirements and the checkout itself as an editable
# package (the mnist-fpga command): once, and again when requirements.txt,
# pyproject.toml or setup.py change. Installs python3-venv with apt-get if it is missing and
# we are root.
set -euo pipefail
venv=${1:-.venv}
stamp="$venv/.requirements-installed"
PYTHON=${PYTHON:-python3}

want=$(cat requirements.txt pyproject.toml setup.py)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
  if ! "$PYTHON" -m venv "$venv" >/dev/null 2>&1; then
    rm -rf "$venv"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "python venv support missing: installing python3-venv with apt-get" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >/dev/null
      apt-get install -y -qq python3-venv >/dev/null
      "$PYTHON" -m venv "$venv"
    else
      echo "error: '$PYTHON -m venv' failed: run 'sudo apt-get install -y python3-venv'" >&2
      exit 1
    fi
  fi
fi
echo "installing Python requirements into $venv (pinned, torch 2.13.0 CPU)" >&2
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r requirements.txt
# no build isolation: the pinned setuptools builds it, with no download
# (its output, setuptools' notes included, is shown only when it fails)
if ! log=$("$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
    --no-build-isolation -e . 2>&1); then
  printf '%s\n' "$log" >&2
  echo "error: 'pip install -e .' of the checkout failed (above)" >&2
  exit 1
fi
printf '%s' "$want" > "$stamp"
