#!/usr/bin/env bash
# The GPU checks of the CUDA target in one run on a lent GPU machine (a session gets 15 minutes of device time in
# all, machine start included): the machine's description, the compile cache warmed (every CUDA library of the
# tests and the benchmark, 16 nvcc at a time), `make test-gpu`, then `make bench-gpu` with the per-kernel profile.
# Logs and results go to $OUT (8 files: what the device tool brings back). Not run yet: expected about 6 to 8
# minutes (nvcc built every library here in 4 minutes on 2 cores for two architectures), steps capped at 570 s.
#
#   run from the repository root there:  bash benchmarks/gpu_session.sh
#   (the device tool: command "bash benchmarks/gpu_session.sh", timeout_s 600; nothing to carry)
#
# The machine has python3 with torch, cupy, onnx, onnxruntime, pytest and nvcc, and no package registry and no
# ROOT: sofie-rdf runs from this checkout (PYTHONPATH), the tests needing ROOT or uproot skip.
set -u -o pipefail
OUT=${OUT:-/tmp/sofie-gpu-session}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export SOFIE_RDF_CACHE=${SOFIE_RDF_CACHE:-/tmp/sofie-rdf-cache}
PYTHON=${PYTHON:-python3}
JOBS=${JOBS:-16}
# Repeats of the benchmark: its table and profile within its 270 s (the steps' limits add up to 570 s).
BENCH_ARGS=${BENCH_ARGS:---warmup 3 --repeat 20 --profile --profile-batch 256}

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
   nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
   command -v nvcc && nvcc --version | tail -n 2
   $PYTHON -c "import sys, torch; print(sys.version.split()[0], 'torch', torch.__version__, torch.cuda.get_device_name())"
} >"$OUT/machine.txt" 2>&1

step warm 170 $PYTHON -m benchmarks.gpu --warm "$JOBS"
step test-gpu 130 make test-gpu PYTHON="$PYTHON"
step bench-gpu 270 make bench-gpu PYTHON="$PYTHON" BENCH_ARGS="$BENCH_ARGS"
for f in gpu.md gpu_calls.md gpu_profile.md gpu.png; do
   [ -f "benchmarks/results/$f" ] && cp "benchmarks/results/$f" "$OUT/"
done
cat "$OUT/machine.txt"
