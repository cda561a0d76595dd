"""The branch/connection benchmark's smoke mode runs and writes sane JSON (never rots)."""

from __future__ import annotations

import json

from support import load_benchmark


def test_structures_branch_smoke(tmp_path):
    load_benchmark("structures_branch").main(["--smoke", "--results-dir", str(tmp_path),
                                     "--img-dir", str(tmp_path)])
    data = json.loads((tmp_path / "structures_branch_smoke.json").read_text())
    assert data["machine"]["torch"]
    inc, dn = data["inception"], data["densenet"]
    row = inc["proximal"][0]
    assert row["modules"] == 4 and row["modules_with_removal"] >= 1  # λ large: branches go
    assert row["macs"] < inc["dense"]["macs"] and row["rho"] > 0
    assert inc["torch_pruning"]["macs"] <= inc["dense"]["macs"]
    drow = dn["proximal"][0]
    assert drow["connections_total"]["pairs"] == 30 and 0 < drow["pair_connections_removed"] <= 1
    assert len(drow["diagram"]["blocks"]) == 3
    assert (tmp_path / "structures_branch_smoke.png").exists()
    assert (tmp_path / "connection_lam20_smoke.png").exists()
