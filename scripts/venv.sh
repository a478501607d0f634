# Sourced by serve.sh and check.sh: create ./.venv with Python >= 3.11 and install rs3gw into it.
ensure_venv() {
  local extra="${1:-}"
  local py="${PYTHON:-python3}"
  if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "rs3gw needs Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2
    exit 1
  fi
  if [ ! -x .venv/bin/python ]; then
    if ! "$py" -m venv .venv 2>/dev/null; then
      # Debian splits venv out of the interpreter package.
      if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        apt-get install -y -q python3-venv >/dev/null
        rm -rf .venv
        "$py" -m venv .venv
      else
        echo "python3 -m venv failed: install python3-venv" >&2
        exit 1
      fi
    fi
  fi
  local stamp=".venv/.rs3gw-installed${extra:+-$extra}"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e ".${extra:+[$extra]}"
    touch "$stamp"
  fi
}
