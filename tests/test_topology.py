"""Topology files, failure configurations, path test and hyperconnection weights (ResiliNet spec §2, §6)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host.ml.topology import TopologyError, load_topology, parse_topology, preset_names

SETTINGS = ("Normal", "Poor", "Hazardous")


def test_all_presets_load():
    assert {"health", "cifar_mobilenet", "cifar_resnet", "har", "fashion"} <= set(preset_names())
    for name in preset_names():
        topo = load_topology(name)
        assert topo.cloud.role == "cloud" and topo.sensors


def test_configurations_are_msb_first_binary_expansion():
    topo = load_topology("health")
    assert topo.failure_order == ["fog1", "fog2", "edge"]
    configs = topo.configurations()
    assert configs[0] == (0, 0, 0) and configs[1] == (0, 0, 1) and configs[4] == (1, 0, 0)
    assert configs[-1] == (1, 1, 1) and len(configs) == 8


@pytest.mark.parametrize("config,vanilla,skips", [
    ((0, 0, 0), False, False), ((0, 0, 1), False, False), ((0, 1, 0), False, True), ((0, 1, 1), False, True),
    ((1, 0, 0), False, False), ((1, 0, 1), False, True), ((1, 1, 0), False, True), ((1, 1, 1), True, True)])
def test_health_path_table(config, vanilla, skips):
    """Spec §2.2: which Health configurations keep an IoT->cloud path."""
    topo = load_topology("health")
    assert topo.has_path(config, skips=False) == vanilla
    assert topo.has_path(config, skips=True) == skips


def test_config_probabilities_match_spec():
    topo = load_topology("health")
    assert topo.config_probability((1, 1, 1), "Hazardous") == pytest.approx(0.5304)
    assert topo.config_probability((0, 1, 0), "Normal") == pytest.approx(0.000768)
    assert topo.config_probability((1, 0, 1), "Poor") == pytest.approx(0.074385)
    cnn = load_topology("fashion")
    assert cnn.config_probability((1, 0), "Hazardous") == pytest.approx(0.17)
    for s in SETTINGS:
        assert sum(cnn.config_probability(c, s) for c in cnn.configurations()) == pytest.approx(1.0)


@pytest.mark.parametrize("preset,with_skips,without", [
    ("health", (0.9964, 0.9844, 0.9326), (0.8744, 0.7521, 0.5304)),
    ("fashion", (0.9992, 0.995, 0.97), (0.9408, 0.855, 0.68)),
    ("cifar_mobilenet", (0.9992, 0.995, 0.97), (0.9408, 0.855, 0.68)),
    ("har", (0.9992, 0.995, 0.97), (0.9408, 0.855, 0.68)),
])
def test_path_probability_caps(preset, with_skips, without):
    topo = load_topology(preset)
    for s, a, b in zip(SETTINGS, with_skips, without):
        assert topo.path_probability(s) == pytest.approx(a, abs=5e-5)
        assert topo.path_probability(s, skips=False) == pytest.approx(b, abs=5e-5)


@pytest.mark.parametrize("keep,expected", [
    ([], (0.8744, 0.7521, 0.5304)), (["fog2->cloud"], (0.8832, 0.7917, 0.6240)),
    (["edge->fog1"], (0.9108, 0.8265, 0.6630)), (["iot->fog2"], (0.9504, 0.8645, 0.6800)),
    (["fog2->cloud", "edge->fog1"], (0.9196, 0.8661, 0.7566)),
    (["fog2->cloud", "iot->fog2"], (0.9600, 0.9100, 0.8000)),
    (["edge->fog1", "iot->fog2"], (0.9868, 0.9389, 0.8126)),
])
def test_skip_subset_caps_health(keep, expected):
    """Spec §6.3 table: path probability per subset of Health's skips."""
    topo = load_topology("health").with_skips(keep)
    for s, e in zip(SETTINGS, expected):
        assert topo.path_probability(s) == pytest.approx(e, abs=5e-5)


def test_hyperconnection_weights_match_spec_formulas():
    cnn = load_topology("fashion")
    re, rf = 0.96, 0.98
    w2 = cnn.hyperconnection_weights(2, "Normal")
    assert w2 == pytest.approx({"iot->edge": 1.0, "iot->fog": 1 / (1 + re), "edge->fog": re / (1 + re),
                                "edge->cloud": re / (rf + re), "fog->cloud": rf / (rf + re)})
    w3 = cnn.hyperconnection_weights(3, "Normal")
    assert w3 == pytest.approx({"iot->edge": 1.0, "iot->fog": 1.0, "edge->fog": re, "edge->cloud": re,
                                "fog->cloud": rf})
    health = load_topology("health")
    r = dict(zip(health.failure_order, health.reliabilities("Hazardous")))
    w2 = health.hyperconnection_weights(2, "Hazardous")
    assert w2["edge->fog1"] == pytest.approx(r["edge"] / (r["edge"] + r["fog2"]))
    assert w2["fog1->cloud"] == pytest.approx(r["fog1"] / (r["fog2"] + r["fog1"]))
    assert set(health.hyperconnection_weights(1).values()) == {1.0}
    w4a, w4b = health.hyperconnection_weights(4, seed=3), health.hyperconnection_weights(4, seed=3)
    assert w4a == w4b and all(0 <= v <= 1 for v in w4a.values()) and len(set(w4a.values())) > 1
    with pytest.raises(ValueError, match="reliability setting"):
        health.hyperconnection_weights(2)


def test_partitions_change_layer_assignment():
    p1, p2 = load_topology("health"), load_topology("health", partition="2")
    assert [len(p1.node(n).layers) for n in ("edge", "fog2", "fog1", "cloud")] == [1, 2, 3, 5]
    assert [len(p2.node(n).layers) for n in ("edge", "fog2", "fog1", "cloud")] == [2, 3, 2, 4]
    with pytest.raises(TopologyError, match="partition"):
        load_topology("health", partition="7")


def test_har_has_two_sensor_nodes_reading_their_features():
    topo = load_topology("har")
    assert [(s.name, s.features) for s in topo.sensors] == [("acc", ("acc",)), ("gyro", ("gyro",))]
    assert {l.name for l in topo.incoming("edge")} == {"acc->edge", "gyro->edge"}


def _raw(**change):
    raw = {"name": "t", "nodes": [{"name": "s", "role": "sensor"}, {"name": "e", "role": "edge"},
                                  {"name": "c", "role": "cloud"}],
           "links": [{"from": "s", "to": "e"}, {"from": "e", "to": "c"}]}
    raw.update(change)
    return raw


def test_invalid_topologies_are_named():
    parse_topology(_raw())
    with pytest.raises(TopologyError, match="unknown node 'x'"):
        parse_topology(_raw(links=[{"from": "s", "to": "x"}]))
    with pytest.raises(TopologyError, match="role"):
        parse_topology(_raw(nodes=[{"name": "s", "role": "gateway"}]))
    with pytest.raises(TopologyError, match="no normal"):
        parse_topology(_raw(links=[{"from": "s", "to": "c"}]))
    with pytest.raises(TopologyError, match="no preset"):
        load_topology("nonexistent")


def test_distillation_presets_generate_students_and_an_averaging_aggregator():
    for name, s, m in (("nonn", 4, 2), ("nonn_s8", 8, 4)):
        topo = load_topology(name)
        assert [n.name for n in topo.sensors] == [f"student{i}" for i in range(s)]
        assert all(n.failable and n.features is None for n in topo.sensors)
        assert topo.cloud.name == "aggregator" and topo.cloud.merge == "average" and not topo.cloud.failable
        assert [(l.src, l.part) for l in topo.incoming("aggregator")] == [(f"student{i}", i % m) for i in range(s)]
        assert topo.failure_order == [f"student{i}" for i in range(s)]
        # a path exists while any student is alive
        assert not topo.has_path((0,) * s) and all(topo.has_path(tuple(int(j == i) for j in range(s)))
                                                    for i in range(s))
        bridge = topo.sensors[0].layers[-2]
        assert bridge["kernel"] == 1 and bridge["filters"] == 128 // m
        assert topo.to_dict()["distillation"]["students"] == s


def test_average_merge_needs_parts_on_every_link():
    raw = {"name": "t", "nodes": [{"name": "a", "role": "sensor"}, {"name": "b", "role": "sensor"},
                                  {"name": "c", "role": "cloud", "merge": "average"}],
           "links": [{"from": "a", "to": "c", "part": 0}, {"from": "b", "to": "c"}]}
    with pytest.raises(TopologyError, match="needs a `part`"):
        parse_topology(raw)
    raw["links"][1]["part"] = 2
    with pytest.raises(TopologyError, match="must be 0..M-1"):
        parse_topology(raw)
    raw["links"][1]["part"] = 1
    parse_topology(raw)
    raw["nodes"][2]["merge"] = "median"
    with pytest.raises(TopologyError, match="merge"):
        parse_topology(raw)
    with pytest.raises(TopologyError, match="parts must divide"):
        parse_topology({"name": "d", "distillation": {"students": 3, "parts": 2}})


@pytest.mark.parametrize("change, message", [
    ({"links": [{"from": "s", "to": "e"}, {"from": "e", "to": "c"}, {"from": "s", "to": "e"}]},
     r"duplicate link s->e \(links\[0\] and links\[2\]\)"),
    ({"links": [{"from": "s", "to": "e"}, {"from": "e", "to": "e"}, {"from": "e", "to": "c"}]}, "to itself"),
    ({"nodes": "s,e,c"}, "nodes must be a list"),
    ({"links": [["s", "e"]]}, r"links\[0\] must be a table"),
    ({"nodes": [{"name": "s", "role": "sensor", "layers": [{"type": "gru"}]}, {"name": "c", "role": "cloud"}]},
     "type 'gru'; layer types are dense"),
    ({"nodes": [{"name": 3, "role": "sensor"}]}, r"nodes\[0\].name must be a string"),
    ({"reliability": {"Normal": ["high"]}}, "must be a number"),
    ({"reliability": {"Normal": [0.9], "order": ["e", "e"]}}, "must list exactly the failable nodes"),
    ({"partitions": {"2": {"ghost": []}}, "default_partition": 2}, r"unknown node\(s\) \['ghost'\]"),
    ({"name": ["t"]}, "name must be a string"),
])
def test_every_graph_error_is_found_when_the_file_is_read(change, message):
    """A bad topology fails at load time with the entry named: before any training starts."""
    with pytest.raises(TopologyError, match=message):
        parse_topology(_raw(**change))


def test_a_broken_toml_file_is_named(tmp_path):
    bad = tmp_path / "mine.toml"
    bad.write_text("name = 't'\n[[nodes]\n")
    with pytest.raises(TopologyError, match=r"mine\.toml: not a valid TOML file"):
        load_topology(bad)


def test_every_layer_type_of_the_file_format_is_built():
    """The file format's layer vocabulary and the model builder's agree (the reader rejects the rest)."""
    import inspect

    from host.ml import schemes
    from host.ml.topology import LAYER_TYPES

    source = inspect.getsource(schemes.apply_layer)
    assert all(f'if t == "{kind}"' in source for kind in LAYER_TYPES)


_names = st.sampled_from(["s", "e", "f", "c", "x", "", 3])
_layer = st.fixed_dictionaries({"type": st.sampled_from(["dense", "gap", "lstm", 7])},
                               optional={"repeat": st.integers(-1, 3), "units": st.integers(1, 4)})
_node = st.fixed_dictionaries({"name": _names}, optional={
    "role": st.sampled_from(["sensor", "edge", "fog", "cloud", "gateway", None]),
    "failable": st.one_of(st.booleans(), st.integers(0, 1)), "merge": st.sampled_from(["concat", "average", "x"]),
    "layers": st.lists(_layer, max_size=2), "features": st.one_of(st.none(), st.lists(st.sampled_from(["a", 1])))})
_link = st.fixed_dictionaries({"from": _names, "to": _names}, optional={
    "skip": st.one_of(st.booleans(), st.just("yes")), "part": st.one_of(st.integers(-1, 2), st.just("0")),
    "projection": st.lists(_layer, max_size=1)})
_topology = st.fixed_dictionaries({"name": st.one_of(st.just("t"), st.integers())}, optional={
    "nodes": st.one_of(st.lists(st.one_of(_node, st.integers()), max_size=5), st.just("nodes")),
    "links": st.lists(st.one_of(_link, st.text(max_size=2)), max_size=6),
    "reliability": st.one_of(st.just({}), st.fixed_dictionaries({"Normal": st.lists(
        st.one_of(st.floats(-1, 2), st.text(max_size=1)), max_size=3)})),
    "partitions": st.one_of(st.just({}), st.just({"2": {"s": [{"type": "gap"}]}}), st.just({"2": []})),
    "default_partition": st.sampled_from(["1", "2", 3]),
    "distillation": st.fixed_dictionaries({}, optional={"students": st.one_of(st.integers(0, 4), st.text(max_size=1)),
                                                        "parts": st.integers(0, 3)})})


@settings(max_examples=400, deadline=None)
@given(_topology)
def test_random_topologies_end_in_a_topology_error_or_a_topology(raw):
    """Whatever a topology file holds, reading it gives a Topology or one TopologyError, never another exception."""
    try:
        topo = parse_topology(raw, source="random.toml")
    except TopologyError as err:
        assert str(err).startswith("random.toml: ")
    else:
        assert topo.cloud.role == "cloud" and topo.has_path(tuple(1 for _ in topo.failure_order), skips=False)
