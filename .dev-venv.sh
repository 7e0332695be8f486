#!/usr/bin/env bash
# Developer helper: a light .venv in this checkout that reuses the big shared dependency venv
# (/work/venv, TensorFlow and friends) and installs this checkout editable, with its executables.
set -euo pipefail
deps=${HELIXTUNE_DEPS_VENV:-/work/venv}
python3 -m venv .venv
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$deps/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > "$site/zz_deps.pth"
.venv/bin/python -m pip install -q --no-deps -e . 2>&1 | grep -v "WARNING: Location" || true
mkdir -p .venv/share/man/man1 && ln -sf "$PWD"/man/*.1 .venv/share/man/man1/  # man <tool>
