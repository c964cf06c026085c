#!/usr/bin/env bash
# GPU check for a lent H100/H200 (one prepared run, < 10 min): the real-size SiaSamRea config -- ResNet-50 at 448 px,
# BERT-base, 9 clips x 8 frames per video -- in bf16 with and without gradient checkpointing: step time, peak memory
# and the largest batch of videos that fits; then JPEG decoding on the GPU for --decode_on_device (nvJPEG through
# torchvision vs the workers' PIL/simplejpeg: images/s, CPU s per sample; < 1 min). Usage: bash benchmarks/bench_gpu.sh
# [OUT_DIR] [--jpeg-decode-only]  (default OUT_DIR: $OUT if set, else benchmarks/results). Needs only the project's
# Python environment (the JPEG part: torch, torchvision, PIL, transformers); no network.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-benchmarks/results}}"
PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}"
mkdir -p "$OUT_DIR"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT_DIR/gpu_nvidia_smi.txt" || true
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
"$PY" -m benchmarks.bench_gpu --out-dir "$OUT_DIR" "${@:2}" 2>&1 | tee "$OUT_DIR/gpu_log.txt"
