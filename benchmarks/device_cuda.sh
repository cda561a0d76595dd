#!/bin/bash
# The CUDA rows of the realized-speedup benchmark, as one prepared run for a GPU machine
# lent for a few minutes (the `device` tool: python3 with torch >= 2.11 and torchvision,
# no internet). Most important rows first, each step under its own timeout, so a short
# lease still brings back the rows that matter:
#   1. ResNet-50 batch 1 (CUDA graphs), 2x: width vs depth by measurement (issue 11's
#      ">= 1.8x" row, where Torch-Pruning's width-only plan reached 1.05x);
#   2. ResNet-50 and MobileNetV2 at batch 256, fp16 channels_last, 2x (issue 6);
#   3. the other zoo models at batch 256, then batch 1.
# Torch-Pruning is not installed there: carry its wheel in .whl/ (ignored by git):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux2014_x86_64 -d .whl torch-pruning==1.6.1
# then run with carry [".whl"]:  bash benchmarks/device_cuda.sh   (results under $OUT,
# or benchmarks/results/ when OUT is unset). Budget: about 8 minutes of a warm machine.
set -u
cd "$(dirname "$0")/.."
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 PRUNEKIT_CACHE=/tmp/pk_cache
DEST=${OUT:-benchmarks/results}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || exit 1
python3 -c "import torch, torchvision; print(torch.__version__, torchvision.__version__,
torch.cuda.get_device_name())" || exit 1
# One command, one result file (the harness refuses to append to another command's file).
B="python3 benchmarks/realized_speedup.py --device cuda --threads 8 --no-warm-rerun
   --width-or-depth --prefer macs --img-dir $DEST"
timeout 150 $B --configs resnet50:1:2 --out $DEST/realized_speedup_cuda_1.json
timeout 150 $B --configs resnet50:256:2 mobilenet_v2:256:2 --out $DEST/realized_speedup_cuda_2.json
timeout 180 $B --configs efficientnet_b0:256:2 vit_b_16:256:2 densenet121:256:2 \
  --out $DEST/realized_speedup_cuda_3.json
timeout 120 $B --configs mobilenet_v2:1:2 vit_b_16:1:2 --out $DEST/realized_speedup_cuda_4.json
for f in $DEST/realized_speedup_cuda_*.json; do
  python3 -c "import json, sys; [print(r['model'], r['batch'], r['target'], round(r['speedup'], 2),
round(r['rho'], 2), r.get('wd_kind'), r.get('wd_speedup')) for r in json.load(open('$f'))['rows']]"
done
