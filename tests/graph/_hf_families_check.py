"""Shared checks for every Hugging Face family of the zoo (test_hf_families_*.py run a
shard each, so that the xdist workers share them): prune at ratio 0.5, then

* ``Model(config)`` loads the pruned state_dict exactly (strict) and gives the same outputs,
* ``save_pretrained`` / ``from_pretrained`` round-trips with equal outputs,
* ``generate()`` with and without the KV cache agree (decoders, encoder-decoders),
* every group left whole is named in ``skipped``; heads are cut or named.

Each family is pruned once (module cache); a family that cannot be checked here is
skipped with its reason in the test id (see ``prunekit.graph.zoo.HF_FAMILIES``).
"""

import copy
import functools
import warnings

import pytest
import torch

import prunekit
from prunekit.graph.trace import call_model, iter_tensors
from prunekit.graph.zoo import hf_families
from prunekit.surgery.hf_config import ConfigWarning

pytest.importorskip("transformers")

FAMILIES = {f.model_type: f for f in hf_families()}


def _params(shard: int, shards: int, check: bool = False):
    out = []
    for i, (name, f) in enumerate(FAMILIES.items()):
        if i % shards != shard:
            continue
        if check and not f.generative:
            continue
        if f.skip:
            out.append(pytest.param(name, id=f"{name} (skipped: {f.skip})",
                                    marks=pytest.mark.skip(reason=f.skip)))
        elif f.ignore:
            out.append(pytest.param(name, id=f"{name} (kept whole: {', '.join(f.ignore)}: "
                                             f"{f.why})"))
        else:
            out.append(pytest.param(name, id=name))
    return out


@functools.cache
def pruned(name):
    """(pruned model, PruneResult, ConfigWarnings raised) for a family, built once."""
    fam = FAMILIES[name]
    model = fam.build()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConfigWarning)
        res = prunekit.prune(model, fam.inputs(), ratio=0.5, ignore=fam.ignore)
    bad = [str(w.message) for w in caught if issubclass(w.category, ConfigWarning)]
    return model, res, bad


def _out(model, x):
    with torch.no_grad():
        return next(iter_tensors(call_model(model, x)))


def test_at_least_30_families():
    assert sum(not f.skip for f in FAMILIES.values()) >= 30
    assert {f.kind for f in FAMILIES.values()} >= {"decoder", "encoder", "encoder-decoder"}


def make_tests(shard: int, shards: int) -> dict:
    """The family tests over every ``shards``-th family starting at ``shard``."""

    @pytest.mark.parametrize("name", _params(shard, shards))
    def test_config_rebuilds_the_pruned_model(name):
        model, res, warned = pruned(name)
        assert not warned and not res.plan.notes, res.plan.notes
        assert res.macs_after < res.macs_before or res.skipped
        fresh = type(model)(copy.deepcopy(model.config)).eval()
        fresh.load_state_dict(model.state_dict(), strict=True)
        x = FAMILIES[name].inputs()
        torch.testing.assert_close(_out(fresh, x), _out(model, x), rtol=1e-5, atol=1e-5)


    @pytest.mark.parametrize("name", _params(shard, shards))
    def test_save_pretrained_round_trip(name, tmp_path):
        model, _, _ = pruned(name)
        model.save_pretrained(tmp_path)
        loaded, info = type(model).from_pretrained(tmp_path, output_loading_info=True)
        assert not any(info.get(k) for k in ("missing_keys", "unexpected_keys",
                                              "mismatched_keys", "error_msgs")), info
        x = FAMILIES[name].inputs()
        torch.testing.assert_close(_out(loaded.eval(), x), _out(model, x), rtol=1e-5, atol=1e-5)


    @pytest.mark.parametrize("name", _params(shard, shards, check=True))
    def test_generate_with_and_without_cache_agree(name):
        model, _, _ = pruned(name)
        x = {k: v for k, v in FAMILIES[name].inputs().items() if not k.startswith("decoder_")}
        kw = dict(max_new_tokens=4, do_sample=False, min_new_tokens=4)
        if model.config.is_encoder_decoder:
            start = getattr(model.generation_config, "decoder_start_token_id", None)
            kw["decoder_start_token_id"] = 0 if start is None else start
        with torch.no_grad():
            cached = model.generate(**x, use_cache=True, **kw)
            plain = model.generate(**x, use_cache=False, **kw)
        assert torch.equal(cached, plain)
        assert cached.shape[-1] >= 4


    @pytest.mark.parametrize("name", _params(shard, shards))
    def test_what_is_left_whole_is_named(name):
        model, res, _ = pruned(name)
        named = {s.get("group") for s in res.skipped}
        whole = [g.id for g in res.groups.groups
                 if g.prunable and not res.plan.groups.get(g.id) and g.id not in named]
        assert not whole, f"groups left whole without a reason: {whole}"
        heads_cut = any("head" in k and "dim" not in k for k in res.plan.config)
        attention_named = [s for s in res.skipped if "attention" in s.get("op", "") or any(
            w in (s.get("module", "") + s.get("group", "")).lower() for w in ("attn", "attention"))]
        assert heads_cut or attention_named, (res.plan.config, res.skipped)

    return {name: fn for name, fn in locals().items() if name.startswith("test_")}
