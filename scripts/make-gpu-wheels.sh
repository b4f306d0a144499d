#!/bin/sh
# Fetch the wheels that scripts/gpu-smoke.sh installs on a GPU machine without an index:
# Keras and what it needs beyond what that machine has (its Python 3.12 has numpy, rich,
# h5py, ml-dtypes, absl-py, packaging; not keras, namex, optree). About 3 MB, into .whl/
# (git-ignored: carry it to the machine). PY_VERSION picks another Python (default 3.12).
set -eu
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && PY=${PYTHON:-.venv/bin/python}
DEST=${WHEELS:-.whl}
mkdir -p "$DEST"
for spec in keras==3.15.1 namex==0.1.0 optree==0.20.0 typing_extensions==4.16.0; do
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version "${PY_VERSION:-3.12}" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$DEST" "$spec"
done
ls -l "$DEST"
du -sh "$DEST"
