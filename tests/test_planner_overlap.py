"""In-place overlap of window kernels (issue 17): a convolution / pooling output may start a few bytes below
an input that dies at that op (codegen/ops/overlap.py). ResNet-8's arena drops below 44,000 B, the overlap
never overwrites an input byte before the kernel's last read of it, and the outputs stay bit-exact.
(Random shapes with overlap on host, host-dsp and qemu: tests/test_kernel_stress.py, chained cases.)"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from codegen import build_module, verify_model
from codegen.ops import KERNELS
from codegen.planner import plan_memory

from codegen_support import TFLM_ARENA_BYTES, mlperf_model

RESNET = "ic_resnet8_int8"


@pytest.fixture(scope="module")
def resnet():
    return build_module(mlperf_model(RESNET))


def test_resnet_arena_uses_conv_overlap(resnet) -> None:
    plan = resnet.plan
    assert plan.arena_size <= 44_000 < TFLM_ARENA_BYTES[RESNET], plan.arena_size
    convs = [o for o in plan.overlaps if resnet.steps[o.step].kernel == "conv"]
    assert len(convs) >= 2, plan.overlaps
    for o in convs:
        out, inp = plan.locations[o.output], plan.locations[o.input]
        assert out.kind == inp.kind == "arena"
        assert inp.index - out.index == o.distance > 0  # the output starts just below its input
        assert o.distance < resnet.graph.tensors[o.input].nbytes // 4  # about a row of pixels, not a copy
    # Without the window overlaps the same model needs the classic 3 x 16 KB at the second convolution.
    classic = plan_memory(resnet.graph, resnet.steps, overlap=False)
    assert classic.arena_size >= 49_000 and classic.lower_bound >= 49_000
    # The bound counts an overlapping pair as one block of its extent: still a bound, and now reached.
    assert plan.lower_bound <= plan.arena_size <= 1.05 * plan.lower_bound


def _window_reads(p: dict, pixel: int) -> np.ndarray:
    """Byte offsets (from the input's start) every tap of output pixel ``pixel`` reads, all channels."""
    i, o, f = p["input_dims"], p["output_dims"], p.get("filter_dims", {"h": 1, "w": 1})
    dil = p.get("dilation", (1, 1))
    oy, ox = divmod(pixel, o["w"])
    ys = [oy * p["stride"][0] - p["padding"][0] + t * dil[0] for t in range(f["h"])]
    xs = [ox * p["stride"][1] - p["padding"][1] + t * dil[1] for t in range(f["w"])]
    taps = [(y * i["w"] + x) * i["c"] for y in ys if 0 <= y < i["h"] for x in xs if 0 <= x < i["w"]]
    return np.array([t + c for t in taps for c in range(i["c"])], dtype=np.int64)


def test_overlap_never_overwrites_a_byte_before_its_last_read(resnet) -> None:
    """Walk each overlapped step in the kernel's order (raster, ``pixels_in_flight`` written ahead of the
    reads): no byte a window reads lies in the output prefix written by then. Independent of the closed
    form the planner uses: every tap of every window, at the plan's real arena offsets."""
    checked = 0
    for o in resnet.plan.overlaps:
        step = resnet.steps[o.step]
        rule = KERNELS[step.kernel].overlap
        if rule is None:
            continue
        p = step.params
        out_base, in_base = resnet.plan.locations[o.output].index, resnet.plan.locations[o.input].index
        pixels, oc = p["output_dims"]["h"] * p["output_dims"]["w"], p["output_dims"]["c"]
        for pixel in range(pixels):
            written_end = out_base + min(pixel + rule.pixels_in_flight, pixels) * oc
            reads = in_base + _window_reads(p, pixel)
            assert reads.size == 0 or reads.min() >= written_end, (step.summary, pixel)
        checked += 1
    assert checked >= 2


@pytest.mark.parametrize("target", ["host", "host-dsp", "qemu"])
def test_resnet_with_overlap_is_bit_exact(target: str, tmp_path: Path) -> None:
    # Outputs only: probing every tensor would pin the intermediates to out[] and disable the overlaps.
    result = verify_model(mlperf_model(RESNET), samples=12 if target == "qemu" else 30, seed=17, target=target,
                          work_dir=tmp_path)
    assert result.ok, [o for o in result.outputs if o.mismatched_bytes]


#: Op-corpus models whose plan lets a convolution / pool output overlap its input (test_op_corpus.py probes
#: every tensor, which pins them all to out[] and so never runs the overlap: these run outputs-only).
CORPUS_OVERLAPPING = ("float_io_cnn", "permute_nchw")


@pytest.mark.parametrize("target", ["host", "qemu"])
@pytest.mark.parametrize("name", CORPUS_OVERLAPPING)
def test_corpus_models_with_overlap_are_bit_exact(name: str, target: str, tmp_path_factory: pytest.TempPathFactory,
                                                   tmp_path: Path) -> None:
    from op_corpus import build_model, corpus_builders

    # Same cache directory as tests/test_op_corpus.py: each model is converted once per session.
    path = build_model(name, tmp_path_factory.getbasetemp() / "op_corpus", corpus_builders())
    module = build_module(path)
    assert any(o.distance > 0 and module.steps[o.step].kernel in ("conv", "maxpool", "avgpool")
               for o in module.plan.overlaps), module.plan.overlaps
    result = verify_model(path, samples=6 if target == "qemu" else 30, seed=18, target=target, work_dir=tmp_path)
    assert result.ok, [o for o in result.outputs if o.mismatched_bytes]
