"""Recover a block-sparse signal from fewer measurements than plain sparsity needs.

n = 256 unknowns, 32 nonzeros in 4 blocks of 8, Gaussian measurements. On this draw the
plain methods (L1, OMP) fail at m = 48 and 64 while multipath block-OMP and block CoSaMP
are exact; group lasso and block-OMP typically need a few more measurements
(benchmarks/sensing_phase.py has the success curves over many draws).

    .venv/bin/python examples/compressive_sensing.py
"""

import numpy as np

from prunekit.apps import StructureInfo, make_operator, recover
from prunekit.apps.signals import block_groups, block_sparse_signal

n, block, blocks = 256, 8, 4
x, _ = block_sparse_signal(n, block, blocks, rng=0)
info = StructureInfo(n=n, k=block * blocks, groups=block_groups(n, block), n_blocks=blocks)

for m in (48, 64):
    A = make_operator("gaussian", m, n, rng=1).dense()
    y = A @ x
    print(f"m = {m}")
    for method in ("l1", "omp", "block-omp", "group-lasso", "cosamp-block", "block-mmp"):
        x_hat = recover(method, A, y, info)
        err = np.linalg.norm(x_hat - x) / np.linalg.norm(x)
        print(f"{method:>13}: relative error {err:.1e}  {'exact' if err < 1e-6 else ''}")
