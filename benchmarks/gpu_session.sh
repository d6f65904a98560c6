#!/usr/bin/env bash
# The GPU checks of the CUDA target in one run on a lent GPU machine (a session gets 15 minutes of device time in
# all, machine start included): the machine's description, the compile cache warmed (every CUDA library of the
# tests and the benchmark, 16 nvcc at a time), `make test-gpu`'s tests, compute-sanitizer's memcheck and
# racecheck on the new kernels (products, implicit-GEMM convolutions, fused attention), then the benchmark
# against torch with the per-kernel profile. Each step has a time limit, so that one failing or slow step leaves
# the others their time; logs and results go to $OUT as the seven files that come back (machine.txt with the
# warm-up's log, test-gpu.log, memcheck.log, racecheck.log, bench-gpu.log, gpu.md with the call overheads,
# gpu_profile.md). The steps' limits add up to 480 s; on an H200 (2026-11-28) the whole run took 220 to 270 s,
# the machine's start about 40 s more.
#
#   run from the repository root there:  bash benchmarks/gpu_session.sh
#   (the device tool: command "bash benchmarks/gpu_session.sh", timeout_s 520, carry [".whl"]: uproot and
#   awkward wheels for Python 3.12, for the columnar tests; without them those tests skip)
#
# The machine has python3 with torch, cupy, onnx, onnxruntime, pytest and nvcc, and no package registry and no
# ROOT: sofie-rdf runs from this checkout (PYTHONPATH), the tests needing ROOT skip.
set -u -o pipefail
OUT=${OUT:-/tmp/sofie-gpu-session}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then
   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
      && export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export SOFIE_RDF_CACHE=${SOFIE_RDF_CACHE:-/tmp/sofie-rdf-cache}
PYTHON=${PYTHON:-python3}
JOBS=${JOBS:-16}
SANITIZER=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -n 1)
PYTEST=("$PYTHON" -m pytest -q -p no:cacheprovider -m gpu -rfEs tests/test_cuda_numerics.py)
$PYTHON -c "import pytest_timeout" 2>/dev/null && PYTEST+=(--timeout 90)  # a hung test fails alone
# The families whose kernels changed since the last GPU run, run under the sanitizers (benchmarks/gpu_sanitize.py).
NEW_KERNELS="mlp cnn conv_gemm conv1d3d attention_op fused_attention movement_and_reductions batched_matmul"

step() {  # step NAME SECONDS COMMAND...: runs COMMAND with a time limit, its output in $OUT/NAME.log
   local name=$1 limit=$2
   shift 2
   local start=$SECONDS
   timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
   local status=$?
   echo "$name: exit $status after $((SECONDS - start)) s" | tee -a "$OUT/machine.txt"
}

{
   date -u
   nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
   command -v nvcc && nvcc --version | tail -n 2
   echo "compute-sanitizer: ${SANITIZER:-none}"
   $PYTHON -c "import sys, torch; print(sys.version.split()[0], 'torch', torch.__version__, torch.cuda.get_device_name())"
   $PYTHON -c "from sofie_rdf.targets.cuda.toolchain import toolchain, device_archs; print(toolchain(), device_archs())"
   $PYTHON -c "import uproot, awkward; print('uproot', uproot.__version__, 'awkward', awkward.__version__)"
} >"$OUT/machine.txt" 2>&1

step warm 100 $PYTHON -m benchmarks.gpu --warm "$JOBS"
step test-gpu 100 "${PYTEST[@]}"
if [ -n "$SANITIZER" ]; then
   SANITIZE=("$SANITIZER" --target-processes all --print-limit 20 --error-exitcode 1 --kernel-name kns=TMVA_SOFIE)
   step memcheck 70 "${SANITIZE[@]}" --tool memcheck $PYTHON -m benchmarks.gpu_sanitize $NEW_KERNELS
   step racecheck 50 "${SANITIZE[@]}" --tool racecheck $PYTHON -m benchmarks.gpu_sanitize attention_op \
      fused_attention conv_gemm cnn
fi
step bench-gpu 160 $PYTHON -m benchmarks.gpu --warmup 5 --repeat 30 --profile --profile-batch 256 --results "$OUT"
# At most eight files come back: the warm-up's log joins machine.txt, the call overheads join gpu.md.
cat "$OUT/warm.log" >>"$OUT/machine.txt" && rm -f "$OUT/warm.log"
[ -f "$OUT/gpu_calls.md" ] && cat "$OUT/gpu_calls.md" >>"$OUT/gpu.md" && rm -f "$OUT/gpu_calls.md"
rm -f "$OUT/gpu.png"
cat "$OUT/machine.txt"
