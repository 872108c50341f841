#!/usr/bin/env bash
# The GPU benchmark suite of issue 9, as ONE command for the device tool (one H100/H200).
#
# Run from the repository root on the GPU machine, with the wheels in .whl (see
# benchmarks/README.md for the pip download command) carried along:
#
#   device run  carry=[".whl"]  timeout_s=600  command="bash benchmarks/gpu_suite.sh"
#
# What it does, most important first, each part under its own time cap and all of it
# within SUITE_SECONDS (570 s: the tool allows 600 s per command; the session's device
# budget is 15 minutes, machine start included); a part with no time left is skipped:
#   1. installs the carried wheels (kfac-jax 0.0.8 and its dependencies, ml-collections)
#      into /tmp/site; prints the GPU, Python, jax, flax, optax versions; imports kfac-jax;
#   2. benchmarks/bench_gpu_resnet50.py at 224x224, batch 256, bf16: standard and TAT
#      ResNet-50, SGD and K-FAC (inverse every 50 steps), peak memory, a profiler trace;
#   3. the jax-0.11.2 compatibility tests on the machine's CPU (tests/test_compat_kfac.py,
#      tests/test_no_tensorflow_path.py);
#   4. benchmarks/bench_framework_overhead.py and bench_optimizers.py at GPU sizes.
# Everything it prints goes to $OUT/suite.log; tables to $OUT/*.txt; RESULTS.md (with the
# sections the benchmarks wrote there) to $OUT/RESULTS.md; the profiler traces, packed,
# to $OUT/profile.tar.gz. Parts that fail or time out are reported and the suite goes on.
# Environment: SUITE_PARTS (default "setup resnet50 tests overhead optimizers") picks parts,
# SUITE_SECONDS the overall limit, PYTHON the interpreter (python3).

set -u
OUT="${OUT:-/tmp/gpu_suite_out}"
mkdir -p "$OUT"
LOG="$OUT/suite.log"
exec > >(tee -a "$LOG") 2>&1
PY="${PYTHON:-python3}"
PARTS="${SUITE_PARTS:-setup resnet50 tests overhead optimizers}"
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
START=$(date +%s)

DEADLINE=$((START + ${SUITE_SECONDS:-570}))   # inside the device tool's 600 s per command

part() {  # part NAME SECONDS COMMAND... : run under min(SECONDS, time left), report status
  local name=$1 cap=$2
  shift 2
  case " $PARTS " in *" $name "*) ;; *) echo "== $name: skipped (SUITE_PARTS)"; return 0;; esac
  local left=$((DEADLINE - $(date +%s)))
  if [ "$left" -lt 20 ]; then echo "== $name: skipped (no time left)"; return 0; fi
  [ "$cap" -gt "$left" ] && cap=$left
  echo "== $name (cap ${cap}s, $(($(date +%s) - START))s into the suite)"
  local t0=$(date +%s)
  timeout --signal=TERM --kill-after=10 "$cap" "$@"
  local rc=$?
  local msg="ok"
  [ $rc -eq 124 ] && msg="TIMED OUT"
  [ $rc -ne 0 ] && [ $rc -ne 124 ] && msg="FAILED (exit $rc)"
  echo "== $name: $msg after $(($(date +%s) - t0))s"
  return 0
}

setup() {
  if compgen -G ".whl/*.whl" > /dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl || return 1
  else
    echo "no .whl folder: K-FAC will be skipped (see benchmarks/README.md)"
  fi
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm \
    --format=csv || true
  "$PY" - <<'EOF'
import sys, jax, flax, optax
print("python", sys.version.split()[0], "| jax", jax.__version__, "| flax", flax.__version__,
      "| optax", optax.__version__, "| devices", jax.devices())
try:
  from dksflax.compat import kfac_jax_compat
  kfac_jax = kfac_jax_compat.load_kfac_jax()
  print("kfac-jax", kfac_jax.__version__, "imports (compat layer applied)")
except ImportError as e:
  print("kfac-jax not importable:", e)
print("tensorflow imported:", "tensorflow" in sys.modules)
EOF
}

export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"

export PY
part setup 150 bash -c "$(declare -f setup); setup"
part resnet50 360 bash -c "set -o pipefail; '$PY' benchmarks/bench_gpu_resnet50.py \
  --batch 256 --resolution 224 --steps 50 --kfac-period 50 --profile /tmp/profile --write \
  | tee '$OUT/resnet50.txt'"
part tests 90 "$PY" -m pytest -q -x -n 4 -p no:cacheprovider \
  tests/test_compat_kfac.py tests/test_no_tensorflow_path.py
part overhead 90 bash -c "set -o pipefail; '$PY' benchmarks/bench_framework_overhead.py \
  --optimizers sgd --batch 128 --image-size 64 --width-multiplier 1 --window 20 --rounds 5 \
  --write | tee '$OUT/overhead.txt'"
part optimizers 90 bash -c "set -o pipefail; '$PY' benchmarks/bench_optimizers.py \
  --models resnet50 --resnet-batch 128 --image-size 224 --rounds 2 --write \
  | tee '$OUT/optimizers.txt'"

cp benchmarks/RESULTS.md "$OUT/RESULTS.md" 2>/dev/null || true
if [ -d /tmp/profile ]; then
  tar -czf "$OUT/profile.tar.gz" -C /tmp profile
  if [ "$(stat -c %s "$OUT/profile.tar.gz")" -gt 15000000 ]; then
    tar -czf "$OUT/profile.tar.gz" -C /tmp profile/standard_sgd   # keep one under 16 MB
  fi
fi
echo "== suite done after $(($(date +%s) - START))s; outputs: $(ls "$OUT" | tr '\n' ' ')"
