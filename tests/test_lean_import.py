"""Importing prunekit must stay cheap: no heavy optional packages, no CUDA init."""

import subprocess
import sys

HEAVY = ["transformers", "timm", "cvxpy", "onnx", "onnxruntime", "skglm", "torch_pruning",
         "matplotlib", "fvcore", "ptflops"]


def test_import_prunekit_is_lean():
    code = (
        "import sys, prunekit, prunekit.sparsity;"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules];"
        "import torch;"
        "assert not torch.cuda.is_initialized(), 'CUDA was initialized';"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing prunekit pulled in: {out.stdout.strip()}"
