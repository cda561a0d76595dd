"""The branch/connection benchmark's smoke mode runs and writes sane JSON (never rots);
Torch-Pruning gets the proximal run's whole epoch budget at its MACs."""

from __future__ import annotations

import json

from support import load_benchmark


def test_structures_branch_smoke(tmp_path):
    out = tmp_path / "structures_branch_smoke.json"
    load_benchmark("structures_branch").main(["--smoke", "--out", str(out),
                                              "--img-dir", str(tmp_path)])
    data = json.loads(out.read_text())
    assert data["machine"]["torch"] and data["provenance"]["complete"]
    inc, dn = data["inception"], data["densenet"]
    row = inc["proximal"][0]
    assert row["modules"] == 4 and row["modules_with_removal"] >= 1  # λ large: branches go
    assert row["macs"] < inc["dense"]["macs"] and row["rho"] > 0
    tp = inc["torch_pruning"]
    assert tp and all(r["macs"] <= inc["dense"]["macs"] for r in tp)
    assert {r["match"] for r in tp} in ({"within 1 %"}, {"bracket", "interpolated"})
    assert all(r["finetune_epochs"] == 2 for r in tp if "finetune_epochs" in r)  # prox + ft
    (cmp,) = data["comparisons"]
    assert set(cmp["spent"].values()) == {2}
    drow = dn["proximal"][0]
    assert drow["connections_total"]["pairs"] == 30 and 0 < drow["pair_connections_removed"] <= 1
    assert len(drow["diagram"]["blocks"]) == 3
    reads = data["splits"]["test_reads"]
    assert len(reads) == len(set(reads))
    assert (tmp_path / "structures_branch_smoke.png").exists()
    assert (tmp_path / "connection_lam20_smoke.png").exists()
