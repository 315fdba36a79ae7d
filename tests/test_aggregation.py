"""Aggregation as data (issue 14): a node with several normal links (merged by sum, concatenation or average)
plus skip links (added by the scheme: sum, or ResiliNet's mux), the same in training (the Aggregate layer of
the whole Keras network), in the float split evaluation (per-node sub-models run by host.ml.split.run_split
with the boards' input rules), and in the boards' node configuration (standby skips guarded by every normal
link). The int8 reference against the boards is in tests/test_camera_preset.py (sum: its f2 has two normal links
and four skips) and tests/test_merge_skips_boards.py (average and concat, each with skips)."""
from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

from host.deploy.firmware import Input, LinkIn, LinkOut, NodeConfig, Output, render_node_config
from host.ml.topology import TopologyError, parse_topology


def _topology(merge: str) -> dict:
    """s -> a, s -> b (normal into f, merged by ``merge``); s -> k1, s -> k2 (skips into f); f -> cloud.
    a, b, k1, k2 are failable: their 16 alive patterns are every presence pattern of f's four links."""
    dense = [{"type": "dense", "units": 6, "activation": "relu"}]
    nodes = [{"name": "s", "role": "sensor", "failable": False, "layers": dense}]
    nodes += [{"name": n, "role": "edge", "layers": dense} for n in ("a", "b", "k1", "k2")]
    nodes += [{"name": "f", "role": "fog", "merge": merge, "failable": False, "layers": dense},
              {"name": "cloud", "role": "cloud", "failable": False,
               "layers": [{"type": "dense", "units": "classes", "activation": "softmax"}]}]
    proj = [{"type": "dense", "units": 12 if merge == "concat" else 6, "activation": "linear"}]
    links = [{"from": "s", "to": n} for n in ("a", "b", "k1", "k2")]
    links += [{"from": "a", "to": "f"}, {"from": "b", "to": "f"}, {"from": "f", "to": "cloud"},
              {"from": "k1", "to": "f", "skip": True, "projection": proj},
              {"from": "k2", "to": "f", "skip": True, "projection": proj}]
    if merge == "average":
        links[4]["part"], links[5]["part"] = 0, 0
    return {"name": f"agg_{merge}", "nodes": nodes, "links": links,
            "reliability": {"order": ["a", "b", "k1", "k2"]}}


@functools.lru_cache(maxsize=None)  # the mux test reuses the (sum, resilinet) network of the equality test
def _split_vs_whole(merge: str, scheme_name: str):
    import keras

    from host.ml.schemes import BuildOptions, build_model, get_scheme
    from host.ml.split import keras_runner, node_models, plan_partition, run_split, sensor_features

    topo = parse_topology(_topology(merge))
    scheme = get_scheme(scheme_name)
    keras.utils.set_random_seed(3)
    model = build_model(topo, scheme, BuildOptions(input_shape=(5,), num_classes=3, seed=3))
    plans = plan_partition(topo, scheme)
    subs = node_models(model, topo, scheme, plans, input_shape=(5,), num_classes=3)
    x = np.random.default_rng(4).normal(size=(16, 5)).astype(np.float32)
    rows = []
    for config in itertools.product((0, 1), repeat=4):
        alive = np.tile(np.array(config, np.float32), (len(x), 1))
        whole = model({"x": x, "alive": alive}, training=False)
        run = run_split(plans, keras_runner(subs), sensor_features(plans, x), topo.alive_map(config),
                        zero=lambda n, s: np.zeros((len(x),) + s.shape, np.float32))
        rows.append((config, np.asarray(whole["probs"]), run))
    return model, plans, rows


@pytest.mark.parametrize("merge,scheme", [("sum", "resilinet"), ("concat", "dfg"), ("average", "resilinet")])
def test_split_network_equals_whole_network_under_every_presence_pattern(merge, scheme):
    """The per-node sub-models with the boards' input rules compute what the trained Keras graph computes,
    for all 16 patterns of which of f's two normal links and two skips arrive."""
    _, plans, rows = _split_vs_whole(merge, scheme)
    plan = plans["f"]
    if scheme == "resilinet":
        assert plan.aggregation == "mux" and plan.guards == ["a->f", "b->f"]
        assert [s.fallback for s in plan.inputs if s.fallback] == ["k1->f", "k2->f"]
    else:
        assert plan.aggregation == "sum" and [s.links for s in plan.inputs][-2:] == [["k1->f"], ["k2->f"]]
    for config, whole, run in rows:
        if not any(config):   # nothing reaches f: no output anywhere (the whole model gives its bias's softmax)
            assert run.result is None
            continue
        np.testing.assert_allclose(run.result, whole, rtol=1e-5, atol=1e-6, err_msg=str(config))
        if scheme == "resilinet":
            assert run.mux_choice["f"] == ("primary" if config[0] or config[1] else "fallback"), config


def test_mux_with_several_normal_links_ignores_skips_while_any_normal_link_came():
    """ResiliNet's rule, generalised: the summed normal links if any came (the skips do not matter), else
    the sum of the skips. Checked on f's input as fed by run_split."""
    _, _, rows = _split_vs_whole("sum", "resilinet")
    fed = {config: run.inputs["f"] for config, _, run in rows if any(config)}
    # a alive, b dead: the skips are fed as 0 whether k1, k2 are alive or not
    for k1, k2 in itertools.product((0, 1), repeat=2):
        a_b_k = fed[(1, 0, k1, k2)]
        assert not np.any(a_b_k[2]) and not np.any(a_b_k[3])
        assert np.any(a_b_k[0]) and not np.any(a_b_k[1])
    # both normal links lost: the skips that came, the others 0
    lost = fed[(0, 0, 1, 0)]
    assert not np.any(lost[0]) and not np.any(lost[1]) and np.any(lost[2]) and not np.any(lost[3])


def test_standby_skips_of_a_node_with_two_normal_links_are_guarded_by_both():
    """node_config.h of such a node: each skip is a standby input whose guards are both normal links."""
    cfg = NodeConfig(name="f", node_id=6, invoke="m_invoke", model_header="m.h",
                     links_in=[LinkIn(1, 2, 24, -3), LinkIn(2, 3, 24, 4), LinkIn(3, 4, 24, 1), LinkIn(4, 5, 24, 0)],
                     inputs=[Input([1]), Input([2]), Input([1, 2, 3], kind="standby"),
                             Input([1, 2, 4], kind="standby")],
                     outputs=[Output(8, 0)], links_out=[LinkOut(output=0, dst=7, link=9)])
    text = render_node_config(cfg)
    assert "{NODE_INPUT_STANDBY, 3, {0, 1, 2}, 24}" in text and "{NODE_INPUT_STANDBY, 3, {0, 1, 3}, 24}" in text
    with pytest.raises(ValueError, match="every incoming link must feed exactly one input"):
        NodeConfig(name="f", node_id=6, invoke="m_invoke", model_header="m.h",
                   links_in=cfg.links_in, inputs=[Input([1]), Input([2]), Input([1, 2, 3], kind="standby")],
                   outputs=cfg.outputs, links_out=cfg.links_out)


def test_merge_sum_accepted_and_parts_only_on_normal_links():
    assert parse_topology(_topology("sum")).node("f").merge == "sum"
    raw = _topology("average")
    raw["links"][-1]["part"] = 0
    with pytest.raises(TopologyError, match="a skip link into 'f' has a `part`"):
        parse_topology(raw)
    raw = _topology("sum")
    raw["nodes"][5]["merge"] = "max"
    with pytest.raises(TopologyError, match="merges are"):
        parse_topology(raw)
