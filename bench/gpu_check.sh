#!/usr/bin/env bash
# Everything that needs a GPU, in one go (about 4-5 minutes on one H100-class GPU): the CUDA tests, then the
# GPU benchmark of issue 16 (codes only, batch 64, fp32 and bf16: networks alone, the input side alone, the main
# process's share with instant networks, and the whole pipeline; threads against processes: bench/input_side.py).
#   bash bench/gpu_check.sh            # uses .venv/bin/python (a CUDA build of torch), or PY=...
#   GPU_CHECK_DRY=1 bash bench/gpu_check.sh   # no GPU needed: every command line parsed, the CUDA tests
#                                             # collected, nothing run (tests/test_gpu_check.py, in CI)
# Results go to stdout and to $OUT (default gpu-check/): copy the figures into docs/BENCHMARKS.md.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
OUT="${OUT:-gpu-check}"
DRY="${GPU_CHECK_DRY:-}"
mkdir -p "$OUT"
# how a benchmark runs: for real, or in a dry run only up to its parsed command line
BENCH=("$PY")
if [ -n "$DRY" ]; then BENCH=("$PY" bench/_parse_only.py); fi
if [ -z "${DECAENV_TEST_ASSETS:-}" ] && [ -d ../shared/assets ]; then export DECAENV_TEST_ASSETS="$(cd ../shared/assets && pwd)"; fi
if [ -z "$DRY" ]; then
    "$PY" -c "import torch, sys; ok = torch.cuda.is_available(); print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name(0) if ok else 'no GPU'); sys.exit(0 if ok else 1)" \
        || { echo "no usable CUDA GPU: nothing to check"; exit 1; }
    nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv 2>/dev/null | tee "$OUT/gpu.txt"
fi
status=0
echo "== CUDA tests"
timeout 150 "$PY" -m pytest -q -m cuda -p no:cacheprovider ${DRY:+--collect-only} tests/runtime/test_cuda.py \
    tests/runtime/test_fast_parity.py 2>&1 | tee "$OUT/cuda-tests.txt" | tail -15 || status=1
echo "== networks alone (batch 64): eager fp32 floor vs fast graphs"
timeout 100 "${BENCH[@]}" bench/fast_networks.py --device cuda --batch 64 --graphs freeze --precisions fp32,bf16 --rounds 10 \
    2>&1 | tee "$OUT/fast-networks.txt" || status=1
echo "== input side alone: threads against worker processes (what feeds the GPU)"
timeout 50 "${BENCH[@]}" bench/input_side.py --count 256 --rounds 2 --workers "8,$(( $(nproc) - 1 ))" 2>&1 | tee "$OUT/input-side.txt" || status=1
echo "== the main process's share per image with instant networks (the most images/s it can feed the GPU)"
timeout 50 "${BENCH[@]}" bench/host_side.py --workers "$(( $(nproc) - 1 ))" --save table --count 256 --batch 64 --rounds 1 2>&1 \
    | grep -v "output name" | tee "$OUT/host-side.txt" || status=1
for run in fp32:processes:codes bf16:processes:codes bf16:processes:table; do
    precision=${run%%:*} rest=${run#*:} kind=${rest%%:*} save=${rest##*:}
    echo "== whole pipeline, --save $save, batch 64, $precision, input side in $kind"
    timeout 60 "${BENCH[@]}" bench/reconstruct.py --device cuda --batch-sizes 64 --count 256 --save "$save" --repeat 2 \
        --precision "$precision" --input-workers "$kind" --json "$OUT/reconstruct-$save-$precision-$kind.json" 2>&1 \
        | tee "$OUT/reconstruct-$save-$precision-$kind.txt" | tail -6 || status=1
done
echo "targets (issue 16): >= 500 images/s fp32 and >= 1500 images/s bf16, codes only, batch 64, one H100-class GPU"
exit $status
