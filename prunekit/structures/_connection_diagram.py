"""The surviving connections of dense blocks as data and as a picture.

Per block: a source × consumer matrix (rows: the block input and each layer; columns:
each layer and the block output ``out``) with 1 for a surviving connection, 0 for a
removed one and None where no connection can exist (a layer never reads itself or a
later layer), plus the slice norms ``‖W_{j,i}‖₂``; and a drawn graph — nodes in block
order, one arc per surviving connection, darker for a larger norm — which shows which
early layers still feed which late ones (seed 000's "interpretable circuit diagram").
"""

from __future__ import annotations

from typing import Any

from prunekit.structures._connection_block import INPUT
from prunekit.structures._connection_trace import OUT, DenseBlock, name_of


def diagram_data(blocks: list[DenseBlock], scores: dict[str, float]) -> dict[str, Any]:
    """JSON-able diagram of ``blocks`` (see module docstring)."""
    out = []
    for b in blocks:
        sources = [INPUT, *b.order]
        consumers = [*b.order, OUT]
        live = set(b.connections())
        matrix, strength = [], []
        for i, s in enumerate(sources):
            row, srow = [], []
            for j, c in enumerate(consumers):
                possible = c == OUT or j >= i  # consumer order index j reads sources < j+1
                if not possible:
                    row.append(None)
                    srow.append(None)
                    continue
                on = (s, c) in live
                row.append(1 if on else 0)
                srow.append(scores.get(name_of(b.name, s, c)) if on else 0.0)
            matrix.append(row)
            strength.append(srow)
        total = sum(1 for r in matrix for v in r if v is not None)
        kept = sum(1 for r in matrix for v in r if v == 1)
        out.append({"block": b.name, "sources": sources, "consumers": consumers,
                    "matrix": matrix, "strength": strength, "connections_total": total,
                    "connections_kept": kept,
                    "removed_layers": [k for k in b.order if k not in b.inputs]})
    return {"blocks": out}


def draw(data: dict[str, Any], path: str, title: str = "") -> None:
    """PNG: per block, the matrix (left) and the drawn graph (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Arc

    blocks = data["blocks"]
    fig, axes = plt.subplots(len(blocks), 2, figsize=(11, 3.2 * len(blocks)), squeeze=False)
    for (ax_m, ax_g), blk in zip(axes, blocks, strict=True):
        mat = np.array([[np.nan if v is None else v for v in r] for r in blk["matrix"]],
                       dtype=float)
        cmap = ListedColormap(["#f1b6b0", "#1b7837"])  # removed, kept; white: impossible
        ax_m.imshow(mat, cmap=cmap, vmin=0, vmax=1)
        ax_m.set_xticks(range(len(blk["consumers"])), [_short(c) for c in blk["consumers"]],
                        rotation=90, fontsize=7)
        ax_m.set_yticks(range(len(blk["sources"])), [_short(s) for s in blk["sources"]],
                        fontsize=7)
        ax_m.set_xlabel("consumer")
        ax_m.set_ylabel("source")
        ax_m.set_title(f"{blk['block']}: {blk['connections_kept']}/{blk['connections_total']} "
                       "kept (green kept, red removed)", fontsize=9)
        nodes = [INPUT] + [s for s in blk["sources"][1:]] + [OUT]
        pos = {n: k for k, n in enumerate(nodes)}
        vals = [v for r in blk["strength"] for v in r if v]
        top = max(vals) if vals else 1.0
        for i, s in enumerate(blk["sources"]):
            for j, c in enumerate(blk["consumers"]):
                if blk["matrix"][i][j] != 1:
                    continue
                a, b = pos[s], pos[c]
                w = (blk["strength"][i][j] or 0.0) / top
                ax_g.add_patch(Arc(((a + b) / 2, 0), b - a, (b - a) * 0.8, theta1=0,
                                   theta2=180, color=plt.cm.viridis(1 - w), lw=0.5 + 2 * w))
        dead = set(blk["removed_layers"])
        ax_g.scatter(range(len(nodes)), [0] * len(nodes), s=60, zorder=3,
                     c=["lightgray" if n in dead else "tab:orange" for n in nodes])
        ax_g.set_xticks(range(len(nodes)), [_short(n) for n in nodes], rotation=90, fontsize=7)
        ax_g.set_yticks([])
        ax_g.set_xlim(-0.7, len(nodes) - 0.3)
        ax_g.set_ylim(-0.3, max(len(nodes) * 0.42, 1))
        ax_g.set_title("surviving connections (darker = larger ‖W‖; gray = removed layer)",
                       fontsize=9)
        for side in ("top", "right", "left"):
            ax_g.spines[side].set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _short(name: str) -> str:
    return name.replace("denselayer", "L").replace("layer", "L")
