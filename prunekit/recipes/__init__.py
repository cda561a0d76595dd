"""Pruning jobs as data: YAML recipes (pydantic), model/data/weights specs, the runner.

* :mod:`~prunekit.recipes.schema` — the recipe schema, validated, errors naming the field;
* :mod:`~prunekit.recipes.specs` — ``torchvision:NAME``, ``timm:NAME``, ``hf:CONFIG.json``,
  ``file.py:factory`` models; ``digits``, ``fashion-mnist[:PATH]``, ``random:3x224x224``
  data; safetensors / ``torch.load(weights_only=True)`` weights;
* :mod:`~prunekit.recipes.runner` — prune → fine-tune → measure → report, one function;
* :mod:`~prunekit.recipes.runs` — ``runs/<timestamp>/`` written atomically.

Heavy packages (timm, transformers, matplotlib) are imported only when a spec needs them.
"""

from prunekit.recipes.schema import (
    Finetune,
    Measure,
    Recipe,
    RecipeError,
    Schedule,
    Target,
    load_recipe,
    parse_recipe,
)

__all__ = [
    "Finetune",
    "Measure",
    "Recipe",
    "RecipeError",
    "Schedule",
    "Target",
    "load_recipe",
    "parse_recipe",
]
