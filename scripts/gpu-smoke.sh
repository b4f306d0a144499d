#!/usr/bin/env bash
# GPU smoke test of stabcheck's Keras backends: for each backend installed (jax, torch,
# tensorflow), side by side,
#   1. a numerical failure: x1000 class weights at learning rate 100 fail (non_finite or
#      diverged), balanced weights at 0.05 are stable (tests/fixtures/backend_models.py);
#   2. a real GPU out-of-memory under --gpu-memory-budget 1GiB: a wide MLP fits at batch
#      32 and runs out of GPU memory at batch 16384 (oom_gpu).
# Prints each report, checks the outcomes (scripts/gpu_smoke_check.py) and exits 1 when one
# is wrong. Offline: where Keras is missing it is installed from the carried wheels in .whl/
# (scripts/make-gpu-wheels.sh) into a private folder on PYTHONPATH; stabcheck runs from
# the repository root as `python3 -m stabcheck`, nothing is installed into the system.
#
#   bash scripts/gpu-smoke.sh          # on the GPU machine (about 2-3 minutes)
#   bash scripts/gpu-smoke.sh --cpu    # anywhere: the numerical checks only, on the CPU
#
# PYTHON picks the interpreter (default python3), WHEELS the wheel folder (default .whl),
# BACKENDS the backends to try (default "jax torch tensorflow", those installed). The log
# goes to $OUT/gpu-smoke.log when OUT is set, else to the run's temporary folder.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
WHEELS=${WHEELS:-.whl}
GPU=1
if [ "${1:-}" = "--cpu" ] || [ "${SMOKE_CPU:-0}" = 1 ]; then GPU=0; fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-smoke.XXXXXX")
LOG=${OUT:+$OUT/gpu-smoke.log}
LOG=${LOG:-$WORK/gpu-smoke.log}

main() {
START=$(date +%s)
echo "gpu-smoke: $(date -u +%FT%TZ) in $ROOT, python $($PY -c 'import sys; print(sys.version.split()[0])'), gpu mode $GPU, work $WORK"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

# -- Keras, from the carried wheels where it is missing ---------------------------------
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
if ! $PY -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('keras') is None)"; then
  site=$WORK/site
  wheels=$(ls "$WHEELS"/keras-*.whl "$WHEELS"/namex-*.whl "$WHEELS"/optree-*.whl 2>/dev/null)
  $PY -c "import typing_extensions" 2>/dev/null || wheels="$wheels $(ls "$WHEELS"/typing_extensions-*.whl 2>/dev/null)"
  if [ -z "$wheels" ]; then
    echo "FAIL: keras is not installed and $WHEELS/ holds no wheels (run scripts/make-gpu-wheels.sh)"
    return 1
  fi
  echo "installing into $site: $(echo $wheels | xargs -n1 basename | tr '\n' ' ')"
  $PY -m pip install -q --no-index --no-deps --no-compile --target "$site" $wheels || {
    echo "FAIL: could not install the carried wheels"; return 1; }
  export PYTHONPATH=$site:$PYTHONPATH
fi
$PY -c "import stabcheck; print('stabcheck', stabcheck.__version__)" || {
  echo "FAIL: stabcheck does not import from $ROOT"; return 1; }

# -- the data of the memory check: 20 000 rows of 1024 features ------------------------
if [ "$GPU" = 1 ]; then
  $PY - "$WORK/wide.npz" <<'EOF'
import sys
import numpy as np
rng = np.random.default_rng(0)
x = rng.normal(size=(20000, 1024)).astype("float32")
np.savez(sys.argv[1], x=x, y=(x[:, 0] > 0).astype("int64"))
EOF
fi

FAILED=""
RAN=""
for backend in ${BACKENDS:-jax torch tensorflow}; do
  if ! $PY -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$backend') is None)"; then
    echo; echo "== $backend: not installed here, skipped"
    continue
  fi
  if ! KERAS_BACKEND=$backend $PY -c "import keras; print('keras', keras.__version__, 'on', keras.backend.backend())"; then
    echo "FAIL: keras does not import under $backend"; FAILED="$FAILED $backend-import"
    continue
  fi
  RAN="$RAN $backend"
  echo; echo "== $backend: numerical failure vs stable ($(($(date +%s) - START)) s)"
  $PY -m stabcheck probe --backend "$backend" \
    --model tests/fixtures/backend_models.py:logits_mlp --data builtin:breast_cancer \
    --class-weight x1000,balanced --lr 100,0.05 --clip none --steps 30 --seeds 1 \
    --timeout 180 --json "$WORK/$backend-nan.json" --journal "$WORK/$backend-nan.jsonl"
  echo "(exit code $?: 1 = failures found, as intended)"
  if [ -f "$WORK/$backend-nan.json" ]; then
    $PY scripts/gpu_smoke_check.py nan "$WORK/$backend-nan.json" "$backend" \
      $([ "$GPU" = 1 ] && echo --gpu) || FAILED="$FAILED $backend-nan"
  else
    echo "FAIL: no result"; FAILED="$FAILED $backend-nan"
  fi
  [ "$GPU" = 1 ] || continue
  echo; echo "== $backend: GPU memory, batch 32 vs 16384 under --gpu-memory-budget 1GiB ($(($(date +%s) - START)) s)"
  $PY -m stabcheck probe --backend "$backend" \
    --model tests/fixtures/backend_models.py:wide_mlp --data "$WORK/wide.npz" \
    --batch-size 32,16384 --class-weight none --lr 0.01 --clip none --optimizer sgd \
    --steps 3 --seeds 1 --max-samples 20000 --gpu-memory-budget 1GiB --timeout 180 \
    --json "$WORK/$backend-oom.json" --journal "$WORK/$backend-oom.jsonl"
  echo "(exit code $?: 1 = failures found, as intended)"
  if [ -f "$WORK/$backend-oom.json" ]; then
    $PY scripts/gpu_smoke_check.py oom "$WORK/$backend-oom.json" "$backend" --gpu \
      || FAILED="$FAILED $backend-oom"
  else
    echo "FAIL: no result"; FAILED="$FAILED $backend-oom"
  fi
done

if [ -n "${OUT:-}" ]; then cp "$WORK"/*.json "$OUT"/ 2>/dev/null; fi
echo
echo "gpu-smoke: ran$RAN in $(($(date +%s) - START)) s; log $LOG"
if [ -z "$RAN" ]; then echo "FAIL: no backend installed"; return 1; fi
if [ -n "$FAILED" ]; then echo "FAIL:$FAILED"; return 1; fi
echo "PASS"
}

main 2>&1 | tee "$LOG"
exit "${PIPESTATUS[0]}"
