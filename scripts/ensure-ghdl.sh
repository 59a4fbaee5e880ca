#!/usr/bin/env bash
# Make sure GHDL >= 2.0 is installed (Debian/Ubuntu): install it with apt-get when we
# are root, otherwise print the one command to run. The llvm back end simulates about
# twice as fast as mcode, so it is the one we install.
set -euo pipefail

if ! command -v ghdl >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "GHDL not found: installing ghdl-llvm with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq ghdl-llvm ghdl >/dev/null
  else
    echo "error: GHDL not found: run 'sudo apt-get install -y ghdl-llvm ghdl' (GHDL >= 2.0)" >&2
    exit 1
  fi
fi

version=$(ghdl --version | head -n 1 | sed -n 's/^GHDL \([0-9][0-9]*\)\..*/\1/p')
if [ -z "$version" ] || [ "$version" -lt 2 ]; then
  echo "error: $(ghdl --version | head -n 1) is too old: cocotb 2 needs GHDL >= 2.0" >&2
  exit 1
fi
