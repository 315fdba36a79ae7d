"""Static memory plan: no two live buffers share bytes, and the arena is close to the lower bound."""
from __future__ import annotations

from pathlib import Path

import pytest

from codegen import build_module
from codegen.emit import Module
from codegen.planner import plan_memory

from codegen_support import MLPERF_MODELS, TFLM_ARENA_BYTES, mlperf_model


def _assert_no_live_overlap(module: Module) -> None:
    """Independent of MemoryPlan.validate: walk the ops and check the arena bytes each one touches."""
    plan = module.plan
    for pos, step in enumerate(module.steps):
        live = plan.live_at(pos)
        spans = sorted((b.offset, b.offset + b.size, b.name) for b in live)
        for (s0, e0, n0), (s1, e1, n1) in zip(spans, spans[1:]):
            assert e0 <= s1, f"op #{step.op_index}: '{n0}' [{s0},{e0}) overlaps '{n1}' [{s1},{e1})"
        assert all(e <= plan.arena_size for _, e, _ in spans)
        # Whatever the op reads or writes must be live (or outside the arena) while it runs.
        for t in step.inputs + step.outputs:
            loc = plan.locations[t]
            if loc.kind == "arena":
                assert any(t in b.tensors for b in live), f"op #{step.op_index}: tensor {t} not live"
        if pos in plan.scratch:
            assert any(b.scratch_of == pos for b in live)


def _buffers_of(module: Module, t: int) -> list[int]:
    return [i for i, b in enumerate(module.plan.buffers) if t in b.tensors]


@pytest.mark.parametrize("model", MLPERF_MODELS)
def test_mlperf_plan(model: str) -> None:
    module = build_module(mlperf_model(model))
    plan = module.plan
    plan.validate()
    _assert_no_live_overlap(module)
    assert plan.arena_size >= plan.lower_bound
    assert plan.arena_size <= 1.05 * plan.lower_bound, (plan.arena_size, plan.lower_bound)
    assert plan.arena_size < TFLM_ARENA_BYTES[model]
    # Even counting the caller's input/output buffers we stay below TFLM's arena, which holds them.
    assert plan.arena_size + module.io_bytes < TFLM_ARENA_BYTES[model]
    print(f"\n{model}: arena {plan.arena_size} B, lower bound {plan.lower_bound} B, scratch {plan.scratch_bytes} B, "
          f"caller I/O {module.io_bytes} B, TFLM {TFLM_ARENA_BYTES[model]} B")


def test_resnet_aliases_and_in_place() -> None:
    module = build_module(mlperf_model("ic_resnet8_int8"))
    plan = module.plan
    graph = module.graph
    reshape = next(s for s in module.steps if s.op_type == "RESHAPE")
    assert reshape.kernel == "alias"
    assert plan.locations[reshape.outputs[0]] == plan.locations[reshape.alias_of]
    # Each residual ADD writes over the input that dies there instead of taking a third 16 KB buffer.
    adds = [s for s in module.steps if s.op_type == "ADD"]
    assert adds and all(plan.locations[s.outputs[0]] in {plan.locations[t] for t in s.inputs} for s in adds)
    # Model I/O stays in the caller's buffers.
    assert plan.locations[graph.inputs[0]].kind == "input"
    assert plan.locations[graph.outputs[0]].kind == "output"
    # In place, each ADD step holds two tensors instead of three (compared without the convolution overlaps,
    # which change the blocks live at the ADDs too: tests/test_planner_overlap.py).
    no_inplace = build_module(mlperf_model("ic_resnet8_int8"), inplace=False)
    no_inplace.plan.validate()
    adds_only = plan_memory(module.graph, module.steps, overlap=False)
    for pos, step in enumerate(module.steps):
        if step.op_type == "ADD":
            live_in_place = sum(b.size for b in adds_only.live_at(pos))
            live_copy = sum(b.size for b in no_inplace.plan.live_at(pos))
            assert live_in_place == live_copy - graph.tensors[step.outputs[0]].nbytes
    assert no_inplace.plan.arena_size >= plan.arena_size


@pytest.fixture(scope="module")
def small_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from codegen_models import build_tiny_models  # no TensorFlow needed for these

    return build_tiny_models(tmp_path_factory.mktemp("planner_models"))


def test_outputs_read_later_and_copies(small_models: dict[str, Path]) -> None:
    module = build_module(small_models["pad_mean"])
    _assert_no_live_overlap(module)
    padded = next(t for t in module.graph.outputs if module.graph.tensors[t].name == "padded")
    # A model output that later ops read is written straight into out[k] and read back from there.
    assert module.plan.locations[padded].kind == "output"

    io = build_module(small_models["reshape_io"])
    assert io.steps[0].kernel == "copy"  # input -> output reshape cannot alias two caller buffers
    assert io.plan.output_copies == [(1, io.graph.inputs[0])]
    assert io.plan.arena_size == 0


def test_lower_bound_counts_scratch() -> None:
    module = build_module(mlperf_model("ic_resnet8_int8"))
    plan = module.plan
    peak_pos = max(range(len(module.steps)), key=lambda p: sum(b.size for b in plan.live_at(p)))
    assert plan.lower_bound == sum(b.size for b in plan.live_at(peak_pos))
    assert any(b.scratch_of == peak_pos for b in plan.live_at(peak_pos))
