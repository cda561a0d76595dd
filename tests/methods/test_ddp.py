"""The fit loop + proximal step under DistributedDataParallel: 2 CPU processes on gloo."""

import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).parent))


def _worker(rank, world, init_file, out_dir):
    from methods_helpers import mlp, mlp_groups
    from torch.nn.parallel import DistributedDataParallel as DDP

    from prunekit.methods import FitConfig, ProximalGroupLasso, fit

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    try:
        model = mlp((64, 24, 16, 10), seed=0)
        gs = mlp_groups(model)
        ddp = DDP(model)
        gen = torch.Generator().manual_seed(0)
        x, y = torch.rand(256, 64, generator=gen), torch.randint(0, 10, (256,), generator=gen)
        opt = ProximalGroupLasso(torch.optim.SGD(ddp.parameters(), lr=0.5), ddp, gs, lam=0.05)
        res = fit(ddp, (x, y), FitConfig(epochs=3, batch_size=32, progress=False), optimizer=opt)
        flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        torch.save({"flat": flat, "zeros": opt.zero_groups(), "steps": res.steps},
                   Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_proximal_step_identical_across_ranks(tmp_path):
    # fork (not spawn): the children inherit the imported torch (and torch._dynamo, which
    # the first optimizer imports), which keeps this test at seconds instead of a minute
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    import methods_helpers  # noqa: F401

    import prunekit.methods  # noqa: F401

    mp.start_processes(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2,
                       join=True, start_method="fork")
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["steps"] == r1["steps"] == 3 * (128 // 32)  # each rank sees half the data
    assert torch.equal(r0["flat"], r1["flat"])
    assert r0["zeros"] == r1["zeros"] and sum(len(v) for v in r0["zeros"].values()) > 0
