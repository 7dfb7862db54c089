#!/usr/bin/env bash
# One-shot GPU check of daemon/sources/nvml.py, for a bare machine with an NVIDIA GPU and no internet:
# python3 with pip, and the nvidia-ml-py wheel carried in .whl/ (see bench/gpu_check.py for what it prints).
#
#   bash bench/device_gpu.sh          # run from the repository root; results go to $OUT (default bench/out)
#
# Every step runs even when an earlier one failed. Writes gpu_check.txt/.json (the .json holds every
# call's value and cost, shaped like tests/fixtures/nvml/h200-probe.json), nvidia-smi-q.txt and
# nvidia-smi-query.csv (captures to add under tests/fixtures/nvml/ for a new GPU model), and
# gpu_check_fake.txt (the same measurement against the recorded H200, on this machine's CPU), whose cost
# sections (sampler ticks, and the gpu check per run) are printed.
# Exit status: gpu_check.py's.
set -u
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
step() { printf '\n### %s\n' "$*"; }

step "python and the nvidia-ml-py wheel"
python3 --version
PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --disable-pip-version-check --no-index --no-deps --target /tmp/site .whl/*.whl \
    || echo "!! installing .whl/*.whl failed; gpu_check will say pynvml is missing"
export PYTHONPATH=/tmp/site:$PWD

step "nvidia-smi -L"
timeout 30 nvidia-smi -L || echo "!! nvidia-smi -L failed"

step "bench/gpu_check.py"
timeout 120 python3 bench/gpu_check.py --json "$OUT/gpu_check.json" 2>&1 | tee "$OUT/gpu_check.txt"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] || echo "!! gpu_check.py exited $rc"

step "captures for tests/fixtures/nvml/"
timeout 60 nvidia-smi -q >"$OUT/nvidia-smi-q.txt" 2>&1 || echo "!! nvidia-smi -q failed"
timeout 30 nvidia-smi --format=csv \
    --query-gpu=name,uuid,utilization.gpu,utilization.memory,memory.used,memory.total,temperature.gpu,power.draw,clocks.sm,clocks_event_reasons.active \
    >"$OUT/nvidia-smi-query.csv" 2>&1 || echo "!! nvidia-smi --query-gpu failed"
head -c 600 "$OUT/nvidia-smi-query.csv"; echo

step "bench/gpu_check.py --fake (recorded H200, this CPU; full text in gpu_check_fake.txt)"
timeout 60 python3 bench/gpu_check.py --fake --json "$OUT/gpu_check_fake.json" >"$OUT/gpu_check_fake.txt" 2>&1 \
    || echo "!! gpu_check.py --fake failed"
sed -n '/== cost per tick ==/,/== cost per call ==/p' "$OUT/gpu_check_fake.txt"

ls -l "$OUT"
exit "$rc"
