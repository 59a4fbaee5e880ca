#!/usr/bin/env bash
# Make sure GHDL >= 2.0 is installed (Debian/Ubuntu): install it with apt-get when we
# are root, otherwise print the one command to run. The llvm back end simulates about
# twice as fast as mcode, so it is the one we install.
#
# No pipe into a reader that exits early (such as head): under pipefail the writer may
# die of SIGPIPE and the script would exit 141 at random. The version is read whole
# into a variable and parsed in the shell.
set -euo pipefail

if ! command -v ghdl >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "GHDL not found: installing ghdl-llvm with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq >/dev/null && apt-get install -y -qq ghdl-llvm ghdl >/dev/null; }; then
      echo "error: 'apt-get install -y ghdl-llvm ghdl' failed: install GHDL >= 2.0 by hand" >&2
      exit 1
    fi
  else
    echo "error: GHDL not found: run 'sudo apt-get install -y ghdl-llvm ghdl' (GHDL >= 2.0)" >&2
    exit 1
  fi
fi

if ! out=$(ghdl --version 2>&1); then
  echo "error: 'ghdl --version' failed: ${out%%$'\n'*}" >&2
  exit 1
fi
first=${out%%$'\n'*}
major=""
if [[ $first =~ ^GHDL\ ([0-9]+)\. ]]; then
  major=${BASH_REMATCH[1]}
fi
if [ -z "$major" ] || [ "$major" -lt 2 ]; then
  echo "error: $first is too old or not recognised: cocotb 2 needs GHDL >= 2.0" >&2
  exit 1
fi
