"""Importing prunekit.importance stays cheap: no heavy optional packages, no CUDA."""

import subprocess
import sys

HEAVY = ["transformers", "timm", "cvxpy", "onnx", "onnxruntime", "skglm", "torch_pruning",
         "matplotlib", "fvcore", "ptflops", "torchvision", "prunekit.graph"]


def test_import_importance_is_lean():
    code = (
        "import sys, prunekit.importance, torch;"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules];"
        "assert not torch.cuda.is_initialized(), 'CUDA was initialized';"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing prunekit.importance pulled in: {out.stdout}"
