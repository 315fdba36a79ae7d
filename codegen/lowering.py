"""Lower each TFLite operator to one CMSIS-NN (or resilinet extension) kernel call.

Every parameter a kernel needs is computed here, on the host, the way TFLM's Prepare() computes it, so
the generated C only holds constants and calls. An op (or option, or tensor type) we cannot reproduce
bit-exactly raises :class:`UnsupportedOpError` naming the op, at generate time rather than on the board.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import quant
from . import scratch as scr
from .errors import UnsupportedOpError
from .graph import Graph, Operator, Tensor

_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
_PADDING = {0: "SAME", 1: "VALID"}


@dataclass
class ConstArray:
    """A const array emitted into flash."""

    key: str  # unique per module; becomes <module>_<key>
    ctype: str  # int8_t | int32_t
    values: np.ndarray
    comment: str = ""
    #: True for model weights/biases (reported as weight bytes), False for derived quantization data.
    is_weight: bool = True

    @property
    def nbytes(self) -> int:
        return int(self.values.size) * (1 if self.ctype == "int8_t" else 4)


@dataclass
class Step:
    """One op after lowering: which kernel, on which tensors, with which constants."""

    op_index: int
    op_type: str
    kernel: str
    output_name: str
    inputs: list[int]  # non-constant tensors read
    outputs: list[int]
    params: dict[str, Any] = field(default_factory=dict)
    consts: list[ConstArray] = field(default_factory=list)
    #: Constant tensors read as data (ADD with a constant, CONCATENATION of a constant, ...).
    const_inputs: list[int] = field(default_factory=list)
    #: Scratch needed per backend (bytes); the plan reserves the worst case.
    scratch: dict[str, int] = field(default_factory=dict)
    macs: int = 0
    #: (output, input) pairs the kernel may compute in place.
    inplace: list[tuple[int, int]] = field(default_factory=list)
    #: For reshapes: the output is the input's bytes under another shape.
    alias_of: int | None = None
    summary: str = ""

    @property
    def scratch_bytes(self) -> int:
        return scr.worst_case(self.scratch)


class _Ctx:
    """Helpers bound to one op, so checks can raise errors that name it."""

    def __init__(self, graph: Graph, op: Operator, backends: tuple[str, ...]) -> None:
        self.graph = graph
        self.op = op
        self.backends = backends
        first_out = op.outputs[0] if op.outputs else -1
        self.output_name = graph.tensors[first_out].name if first_out >= 0 else "?"

    def fail(self, reason: str, hint: str = "") -> UnsupportedOpError:
        return UnsupportedOpError(self.op.op_type, self.op.index, self.output_name, reason, hint)

    def t(self, position: int, *, outputs: bool = False) -> Tensor:
        indices = self.op.outputs if outputs else self.op.inputs
        if position >= len(indices) or indices[position] < 0:
            raise self.fail(f"missing {'output' if outputs else 'input'} {position}")
        return self.graph.tensors[indices[position]]

    def optional(self, position: int) -> Tensor | None:
        if position >= len(self.op.inputs) or self.op.inputs[position] < 0:
            return None
        return self.graph.tensors[self.op.inputs[position]]

    def int8_activation(self, t: Tensor, role: str) -> None:
        if t.dtype != "int8":
            hint = ("Convert with full-integer quantization "
                    "(inference_input_type=tf.int8, inference_output_type=tf.int8)")
            raise self.fail(f"{role} '{t.name}' is {t.dtype}; only int8 activations are supported", hint)
        if t.quant is None:
            raise self.fail(f"{role} '{t.name}' has no quantization parameters")
        if t.quant.per_channel:
            raise self.fail(f"{role} '{t.name}' is quantized per channel; activations must be per tensor")

    def const(self, t: Tensor, role: str, dtype: str) -> np.ndarray:
        if t.data is None:
            raise self.fail(f"{role} '{t.name}' is not a constant", "Only constant weights/biases are supported")
        if t.dtype != dtype:
            raise self.fail(f"{role} '{t.name}' is {t.dtype}, expected {dtype}")
        return t.data

    def activation(self) -> str:
        act = _ACTIVATIONS.get(int(self.op.options.get("fused_activation_function", 0) or 0), "?")
        if act not in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1"):
            raise self.fail(f"fused activation {act} is not supported",
                            "Use no activation, RELU, RELU6 or RELU_N1_TO_1")
        return act

    def act_range(self, out: Tensor) -> tuple[int, int]:
        assert out.quant is not None
        return quant.activation_range(self.activation(), out.quant.scale, out.quant.zero_point)

    def key(self, what: str) -> str:
        return f"op{self.op.index}_{what}"


def _nhwc(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    if len(shape) > 4:
        raise ValueError(shape)
    s = (1,) * (4 - len(shape)) + tuple(shape)
    return s[0], s[1], s[2], s[3]


def _dims(n: int, h: int, w: int, c: int) -> dict[str, int]:
    return {"n": n, "h": h, "w": w, "c": c}


def _out_size(padding: str, size: int, k: int, stride: int, dilation: int) -> int:
    eff = (k - 1) * dilation + 1
    if padding == "SAME":
        return (size + stride - 1) // stride
    return (size + stride - eff) // stride


def _pad_amount(stride: int, dilation: int, size: int, k: int, out: int) -> int:
    # TFLite ComputePaddingWithOffset: leading pad; the odd extra pixel lands at the end.
    eff = (k - 1) * dilation + 1
    total = max(0, (out - 1) * stride + eff - size)
    return total // 2


def _spatial(ctx: _Ctx, in_hw: tuple[int, int], k_hw: tuple[int, int], out_hw: tuple[int, int],
             stride_hw: tuple[int, int], dil_hw: tuple[int, int]) -> tuple[int, int]:
    padding = _PADDING.get(int(ctx.op.options.get("padding", 0) or 0))
    if padding is None:
        raise ctx.fail(f"padding type {ctx.op.options.get('padding')} is not supported")
    pads = []
    for axis in range(2):
        expected = _out_size(padding, in_hw[axis], k_hw[axis], stride_hw[axis], dil_hw[axis])
        if expected != out_hw[axis]:
            raise ctx.fail(f"output {'height' if axis == 0 else 'width'} {out_hw[axis]} does not match "
                           f"{padding} padding (expected {expected})")
        pads.append(_pad_amount(stride_hw[axis], dil_hw[axis], in_hw[axis], k_hw[axis], out_hw[axis]))
    return pads[0], pads[1]


def _bias(ctx: _Ctx, channels: int) -> np.ndarray:
    b = ctx.optional(2)
    if b is None:
        return np.zeros(channels, dtype=np.int32)
    data = ctx.const(b, "bias", "int32")
    if data.size != channels:
        raise ctx.fail(f"bias has {data.size} values for {channels} output channels")
    return data.reshape(-1).astype(np.int32)


def _weights_quant(ctx: _Ctx, w: Tensor, channels: int, axis: int) -> tuple[float, ...]:
    if w.dtype != "int8":
        raise ctx.fail(f"weights '{w.name}' are {w.dtype}; only int8 weights are supported",
                       "int4/int16/float weights need a different kernel set")
    if w.quant is None:
        raise ctx.fail(f"weights '{w.name}' are not quantized")
    if any(z != 0 for z in w.quant.zero_points):
        raise ctx.fail(f"weights '{w.name}' have a non-zero zero point", "int8 weights must be symmetric")
    if w.quant.per_channel and (len(w.quant.scales) != channels or w.quant.axis != axis):
        raise ctx.fail(f"weights '{w.name}' are quantized along axis {w.quant.axis} with "
                       f"{len(w.quant.scales)} scales; expected {channels} along axis {axis}")
    return w.quant.scales


def _quant_arrays(ctx: _Ctx, mults: list[int], shifts: list[int]) -> list[ConstArray]:
    return [
        ConstArray(ctx.key("mult"), "int32_t", np.asarray(mults, dtype=np.int64), "requantization multipliers", False),
        ConstArray(ctx.key("shift"), "int32_t", np.asarray(shifts, dtype=np.int64), "requantization shifts", False),
    ]


# ------------------------------------------------------------------------------------------------ ops


def _conv(ctx: _Ctx) -> Step:
    x, w, y = ctx.t(0), ctx.t(1), ctx.t(0, outputs=True)
    ctx.int8_activation(x, "input")
    ctx.int8_activation(y, "output")
    if len(x.shape) != 4 or len(w.shape) != 4:
        raise ctx.fail("expects 4-D NHWC input and [C_out, KH, KW, C_in] filter")
    n, h, wd, c = x.shape
    cout, kh, kw, cin = w.shape
    if cin != c:
        raise ctx.fail(f"grouped convolution (filter depth {cin}, input depth {c}) is not supported")
    wdata = ctx.const(w, "filter", "int8")
    scales = _weights_quant(ctx, w, cout, 0)
    _, oh, ow, oc = y.shape
    o = ctx.op.options
    stride = (int(o.get("stride_h", 1)), int(o.get("stride_w", 1)))
    dil = (int(o.get("dilation_h_factor", 1) or 1), int(o.get("dilation_w_factor", 1) or 1))
    pad = _spatial(ctx, (h, wd), (kh, kw), (oh, ow), stride, dil)
    assert x.quant and y.quant
    mults, shifts = quant.per_channel_multipliers(x.quant.scale, scales, y.quant.scale, cout)
    act_min, act_max = ctx.act_range(y)
    in_d, f_d, o_d = scr.Dims(n, h, wd, c), scr.Dims(cout, kh, kw, cin), scr.Dims(n, oh, ow, oc)
    sizes = {b: scr.convolve_wrapper_s8(pad, stride, dil, in_d, f_d, o_d, b) for b in ctx.backends}
    kind = "1x1" if (kh, kw) == (1, 1) and pad == (0, 0) and dil == (1, 1) else f"{kh}x{kw}"
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel="conv", output_name=y.name,
        inputs=[x.index], outputs=[y.index],
        params=dict(
            input=x.index, output=y.index,
            input_offset=-x.quant.zero_point, output_offset=y.quant.zero_point,
            stride=stride, padding=pad, dilation=dil, act_min=act_min, act_max=act_max,
            input_dims=_dims(n, h, wd, c), filter_dims=_dims(cout, kh, kw, cin),
            bias_dims=_dims(1, 1, 1, cout), output_dims=_dims(n, oh, ow, oc),
        ),
        consts=[ConstArray(ctx.key("weights"), "int8_t", wdata.reshape(-1), f"filter {list(w.shape)}"),
                ConstArray(ctx.key("bias"), "int32_t", _bias(ctx, cout), f"bias [{cout}]"),
                *_quant_arrays(ctx, mults, shifts)],
        scratch=sizes, macs=n * oh * ow * cout * kh * kw * cin,
        summary=f"{kind} conv s{stride[0]}x{stride[1]} {list(x.shape)} -> {list(y.shape)}",
    )


def _depthwise(ctx: _Ctx) -> Step:
    x, w, y = ctx.t(0), ctx.t(1), ctx.t(0, outputs=True)
    ctx.int8_activation(x, "input")
    ctx.int8_activation(y, "output")
    if len(x.shape) != 4 or len(w.shape) != 4 or w.shape[0] != 1:
        raise ctx.fail("expects 4-D NHWC input and [1, KH, KW, C_out] filter")
    n, h, wd, c = x.shape
    _, kh, kw, cout = w.shape
    if cout % c != 0:
        raise ctx.fail(f"output depth {cout} is not a multiple of input depth {c}")
    ch_mult = cout // c
    wdata = ctx.const(w, "filter", "int8")
    scales = _weights_quant(ctx, w, cout, 3)
    _, oh, ow, oc = y.shape
    o = ctx.op.options
    stride = (int(o.get("stride_h", 1)), int(o.get("stride_w", 1)))
    dil = (int(o.get("dilation_h_factor", 1) or 1), int(o.get("dilation_w_factor", 1) or 1))
    pad = _spatial(ctx, (h, wd), (kh, kw), (oh, ow), stride, dil)
    assert x.quant and y.quant
    mults, shifts = quant.per_channel_multipliers(x.quant.scale, scales, y.quant.scale, cout)
    act_min, act_max = ctx.act_range(y)
    in_d, f_d, o_d = scr.Dims(n, h, wd, c), scr.Dims(1, kh, kw, cout), scr.Dims(n, oh, ow, oc)
    sizes = {b: scr.depthwise_wrapper_s8(pad, dil, in_d, f_d, o_d, b) for b in ctx.backends}
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel="dwconv", output_name=y.name,
        inputs=[x.index], outputs=[y.index],
        params=dict(
            input=x.index, output=y.index, ch_mult=ch_mult,
            input_offset=-x.quant.zero_point, output_offset=y.quant.zero_point,
            stride=stride, padding=pad, dilation=dil, act_min=act_min, act_max=act_max,
            input_dims=_dims(n, h, wd, c), filter_dims=_dims(1, kh, kw, cout),
            bias_dims=_dims(1, 1, 1, cout), output_dims=_dims(n, oh, ow, oc),
        ),
        consts=[ConstArray(ctx.key("weights"), "int8_t", wdata.reshape(-1), f"filter {list(w.shape)}"),
                ConstArray(ctx.key("bias"), "int32_t", _bias(ctx, cout), f"bias [{cout}]"),
                *_quant_arrays(ctx, mults, shifts)],
        scratch=sizes, macs=n * oh * ow * cout * kh * kw,
        summary=f"{kh}x{kw} depthwise x{ch_mult} s{stride[0]}x{stride[1]} {list(x.shape)} -> {list(y.shape)}",
    )


def _fully_connected(ctx: _Ctx) -> Step:
    x, w, y = ctx.t(0), ctx.t(1), ctx.t(0, outputs=True)
    ctx.int8_activation(x, "input")
    ctx.int8_activation(y, "output")
    if int(ctx.op.options.get("weights_format", 0) or 0) != 0:
        raise ctx.fail("shuffled weights format is not supported", "Convert with the default weights format")
    if len(w.shape) != 2:
        raise ctx.fail(f"filter must be 2-D, got {list(w.shape)}")
    cout, depth = w.shape
    wdata = ctx.const(w, "filter", "int8")
    scales = _weights_quant(ctx, w, cout, 0)
    if x.num_elements % depth != 0:
        raise ctx.fail(f"input has {x.num_elements} elements, not a multiple of the depth {depth}")
    batches = x.num_elements // depth
    if y.num_elements != batches * cout:
        raise ctx.fail(f"output has {y.num_elements} elements, expected {batches * cout}")
    assert x.quant and y.quant
    act_min, act_max = ctx.act_range(y)
    per_channel = w.quant is not None and w.quant.per_channel
    consts = [ConstArray(ctx.key("weights"), "int8_t", wdata.reshape(-1), f"weights {list(w.shape)}"),
              ConstArray(ctx.key("bias"), "int32_t", _bias(ctx, cout), f"bias [{cout}]")]
    params: dict[str, Any] = dict(
        input=x.index, output=y.index, per_channel=per_channel,
        input_offset=-x.quant.zero_point, output_offset=y.quant.zero_point, act_min=act_min, act_max=act_max,
        input_dims=_dims(batches, 1, 1, depth), filter_dims=_dims(depth, 1, 1, cout),
        bias_dims=_dims(1, 1, 1, cout), output_dims=_dims(batches, 1, 1, cout),
    )
    if per_channel:
        mults, shifts = quant.per_channel_multipliers(x.quant.scale, scales, y.quant.scale, cout)
        consts += _quant_arrays(ctx, mults, shifts)
    else:
        params["multiplier"], params["shift"] = quant.quantize_multiplier(x.quant.scale * scales[0] / y.quant.scale)
    sizes = {b: scr.fully_connected_s8(scr.Dims(depth, 1, 1, cout), b) for b in ctx.backends}
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel="fc", output_name=y.name,
        inputs=[x.index], outputs=[y.index], params=params, consts=consts, scratch=sizes,
        macs=batches * cout * depth,
        summary=f"{depth} -> {cout}{' per-channel' if per_channel else ''} x{batches}",
    )


def _pool(ctx: _Ctx) -> Step:
    x, y = ctx.t(0), ctx.t(0, outputs=True)
    ctx.int8_activation(x, "input")
    ctx.int8_activation(y, "output")
    assert x.quant and y.quant
    if abs(x.quant.scale - y.quant.scale) > 1e-6 or x.quant.zero_point != y.quant.zero_point:
        raise ctx.fail("input and output quantization differ (TFLM requires them equal for int8 pooling)")
    if len(x.shape) != 4:
        raise ctx.fail("expects 4-D NHWC input")
    n, h, wd, c = x.shape
    _, oh, ow, _ = y.shape
    o = ctx.op.options
    stride = (int(o.get("stride_h", 1)), int(o.get("stride_w", 1)))
    k = (int(o.get("filter_height", 1)), int(o.get("filter_width", 1)))
    pad = _spatial(ctx, (h, wd), k, (oh, ow), stride, (1, 1))
    act_min, act_max = ctx.act_range(y)
    is_avg = ctx.op.op_type == "AVERAGE_POOL_2D"
    sizes = {b: (scr.avgpool_s8(ow, c, b) if is_avg else 0) for b in ctx.backends}
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel="avgpool" if is_avg else "maxpool",
        output_name=y.name, inputs=[x.index], outputs=[y.index],
        params=dict(input=x.index, output=y.index, stride=stride, padding=pad, act_min=act_min, act_max=act_max,
                    input_dims=_dims(n, h, wd, c), filter_dims=_dims(1, k[0], k[1], 1),
                    output_dims=_dims(n, oh, ow, c)),
        scratch=sizes,
        summary=f"{k[0]}x{k[1]} s{stride[0]}x{stride[1]} {list(x.shape)} -> {list(y.shape)}",
    )


def _broadcast_plan(a_shape: tuple[int, ...], b_shape: tuple[int, ...],
                    out_shape: tuple[int, ...]) -> tuple[int, list[tuple[int, int, int, int]]]:
    """Decompose a broadcast elementwise op into calls on contiguous blocks.

    Returns (block, loops): ``block`` elements per kernel call and, outermost first, loops of
    (count, a_stride, b_stride, out_stride) in elements. A broadcast operand has stride 0 on the axes
    it is repeated along.
    """
    rank = len(out_shape)
    a = (1,) * (rank - len(a_shape)) + tuple(a_shape)
    b = (1,) * (rank - len(b_shape)) + tuple(b_shape)
    dims: list[tuple[int, bool, bool]] = []  # (size, a_broadcast, b_broadcast)
    for da, db, do in zip(a, b, out_shape):
        if do == 1:
            continue
        dims.append((do, da == 1, db == 1))
    merged: list[list[Any]] = []
    for size, ba, bb in dims:
        if merged and merged[-1][1] == ba and merged[-1][2] == bb:
            merged[-1][0] *= size
        else:
            merged.append([size, ba, bb])
    block = 1
    if merged and not merged[-1][1] and not merged[-1][2]:
        block = merged.pop()[0]
    loops: list[tuple[int, int, int, int]] = []
    a_stride = b_stride = o_stride = block
    for size, ba, bb in reversed(merged):
        loops.append((size, 0 if ba else a_stride, 0 if bb else b_stride, o_stride))
        if not ba:
            a_stride *= size
        if not bb:
            b_stride *= size
        o_stride *= size
    loops.reverse()
    return block, loops


def _binary(ctx: _Ctx) -> Step:
    a, b, y = ctx.t(0), ctx.t(1), ctx.t(0, outputs=True)
    for t, role in ((a, "input 1"), (b, "input 2"), (y, "output")):
        ctx.int8_activation(t, role)
    assert a.quant and b.quant and y.quant
    try:
        expected = tuple(np.broadcast_shapes(a.shape, b.shape))
    except ValueError:
        raise ctx.fail(f"shapes {list(a.shape)} and {list(b.shape)} do not broadcast") from None
    if expected != tuple(y.shape) and int(np.prod(expected)) != y.num_elements:
        raise ctx.fail(f"output shape {list(y.shape)} is not the broadcast shape {list(expected)}")
    if len(expected) > 6:
        raise ctx.fail("more than 6 dimensions")
    act_min, act_max = ctx.act_range(y)
    block, loops = _broadcast_plan(a.shape, b.shape, expected)
    params: dict[str, Any] = dict(input1=a.index, input2=b.index, output=y.index, block=block, loops=loops,
                                  act_min=act_min, act_max=act_max)
    if ctx.op.op_type == "ADD":
        try:
            p = quant.add_params(a.quant.scale, a.quant.zero_point, b.quant.scale, b.quant.zero_point,
                                 y.quant.scale, y.quant.zero_point)
        except ValueError as exc:
            raise ctx.fail(f"scales out of the range TFLM's int8 ADD accepts ({exc})") from None
        params["add"] = p
        kernel = "add"
    else:
        mult, shift = quant.mul_params(a.quant.scale, b.quant.scale, y.quant.scale)
        params.update(input1_offset=-a.quant.zero_point, input2_offset=-b.quant.zero_point,
                      output_offset=y.quant.zero_point, multiplier=mult, shift=shift)
        kernel = "mul"
    inplace = [(y.index, t.index) for t in (a, b)
               if not t.is_const and tuple(t.shape) == tuple(y.shape) and t.dtype == y.dtype]
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel=kernel, output_name=y.name,
        inputs=[t.index for t in (a, b) if not t.is_const], outputs=[y.index], params=params,
        const_inputs=[t.index for t in (a, b) if t.is_const], inplace=inplace,
        summary=f"{list(a.shape)} {'+' if kernel == 'add' else '*'} {list(b.shape)} -> {list(y.shape)}"
                + (f" ({len(loops)} broadcast loop(s), block {block})" if loops else ""),
    )


def _softmax(ctx: _Ctx) -> Step:
    x, y = ctx.t(0), ctx.t(0, outputs=True)
    ctx.int8_activation(x, "input")
    ctx.int8_activation(y, "output")
    assert x.quant and y.quant
    if y.quant.zero_point != -128 or abs(y.quant.scale - 1.0 / 256) > 0.001 / 256:
        raise ctx.fail(f"output quantization (scale {y.quant.scale}, zero point {y.quant.zero_point}) is not "
                       "the 1/256, -128 TFLM requires for int8 softmax")
    beta = float(ctx.op.options.get("beta", 1.0))
    sp = quant.softmax_params(beta, x.quant.scale)
    row = x.shape[-1] if x.shape else 1
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel="softmax", output_name=y.name,
        inputs=[x.index], outputs=[y.index],
        params=dict(input=x.index, output=y.index, rows=x.num_elements // row, row_size=row,
                    multiplier=sp.multiplier, shift=sp.shift, diff_min=sp.diff_min),
        summary=f"{list(x.shape)} beta={beta:g}",
    )


def _alias(ctx: _Ctx) -> Step:
    x, y = ctx.t(0), ctx.t(0, outputs=True)
    if x.dtype != "int8" or y.dtype != "int8":
        raise ctx.fail(f"only int8 tensors are supported (got {x.dtype} -> {y.dtype})")
    if x.nbytes != y.nbytes:
        raise ctx.fail(f"input has {x.nbytes} bytes but output {y.nbytes}")
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel="alias", output_name=y.name,
        inputs=[] if x.is_const else [x.index], outputs=[y.index], alias_of=x.index,
        const_inputs=[x.index] if x.is_const else [],
        params=dict(input=x.index, output=y.index, size=y.nbytes),
        summary=f"{list(x.shape)} -> {list(y.shape)}",
    )


def _concat_call(outer: int, mid: int, inner: int, out_mid: int, offset: int) -> dict[str, Any]:
    """Pick the arm_concatenation_s8_* variant whose uint16 dimensions fit the [outer, mid, inner] view."""
    def fits(*v: int) -> bool:
        return all(0 < x <= 0xFFFF for x in v)

    if outer == 1 and fits(inner, mid):
        return dict(variant="w", x=inner, y=1, z=1, w=mid, offset=offset)
    if inner == 1 and fits(mid, outer, out_mid):
        return dict(variant="x", x=mid, y=outer, z=1, w=1, out=out_mid, offset=offset)
    if fits(inner, mid, outer, out_mid):
        return dict(variant="y", x=inner, y=mid, z=outer, w=1, out=out_mid, offset=offset)
    raise ValueError("dimensions exceed the 16-bit range of arm_concatenation_s8_*")


def _concatenation(ctx: _Ctx) -> Step:
    y = ctx.t(0, outputs=True)
    ctx.int8_activation(y, "output")
    if ctx.activation() != "NONE":
        raise ctx.fail("a fused activation on CONCATENATION is not supported")
    assert y.quant
    rank = len(y.shape)
    axis = int(ctx.op.options.get("axis", 0))
    axis = axis + rank if axis < 0 else axis
    outer = int(np.prod(y.shape[:axis], dtype=np.int64))
    inner = int(np.prod(y.shape[axis + 1:], dtype=np.int64))
    calls = []
    offset = 0
    inputs = [ctx.graph.tensors[i] for i in ctx.op.inputs if i >= 0]
    for t in inputs:
        ctx.int8_activation(t, "input")
        assert t.quant
        if t.quant.scale != y.quant.scale or t.quant.zero_point != y.quant.zero_point:
            raise ctx.fail(f"input '{t.name}' is quantized differently from the output "
                           "(TFLM's int8 concatenation does not rescale)")
        if len(t.shape) != rank:
            raise ctx.fail(f"input '{t.name}' has rank {len(t.shape)}, output {rank}")
        mid = t.shape[axis]
        try:
            call = _concat_call(outer, mid, inner, y.shape[axis], offset)
        except ValueError as exc:
            raise ctx.fail(str(exc)) from None
        call["input"] = t.index
        calls.append(call)
        offset += mid
    if offset != y.shape[axis]:
        raise ctx.fail(f"inputs add up to {offset} along axis {axis}, output has {y.shape[axis]}")
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel="concat", output_name=y.name,
        inputs=[t.index for t in inputs if not t.is_const], outputs=[y.index],
        const_inputs=[t.index for t in inputs if t.is_const],
        params=dict(output=y.index, calls=calls),
        summary=f"{len(inputs)} inputs along axis {axis} -> {list(y.shape)}",
    )


def _pad(ctx: _Ctx) -> Step:
    x, y = ctx.t(0), ctx.t(0, outputs=True)
    ctx.int8_activation(x, "input")
    ctx.int8_activation(y, "output")
    assert y.quant
    pad_t = ctx.t(1)
    if pad_t.dtype not in ("int32", "int64"):
        raise ctx.fail("paddings must be int32 or int64")
    paddings = np.asarray(ctx.const(pad_t, "paddings", pad_t.dtype), dtype=np.int64).reshape(-1, 2)
    rank = len(x.shape)
    if rank > 4 or paddings.shape[0] != rank:
        raise ctx.fail("only up to 4-D tensors are supported")
    pad_value = y.quant.zero_point
    cv = ctx.optional(2)
    if cv is not None:
        value = ctx.const(cv, "constant value", "int8")
        pad_value = int(value.reshape(-1)[0])
    pre = [0] * (4 - rank) + [int(p) for p in paddings[:, 0]]
    post = [0] * (4 - rank) + [int(p) for p in paddings[:, 1]]
    if min(pre + post) < 0:
        raise ctx.fail("negative paddings are not supported")
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel="pad", output_name=y.name,
        inputs=[x.index], outputs=[y.index],
        params=dict(input=x.index, output=y.index, pad_value=pad_value, input_dims=_dims(*_nhwc(x.shape)),
                    pre=_dims(*pre), post=_dims(*post)),
        summary=f"{list(x.shape)} -> {list(y.shape)} value {pad_value}",
    )


def _mean(ctx: _Ctx) -> Step:
    """TFLM's int8 MEAN: its integer QuantizedMeanOrSum (requantize the zero-point-corrected sum with a
    multiplier that folds in 1/count). The installed TFLM takes this path even when input and output
    quantization are identical (older releases had a truncating integer division there and a
    special 4-D keep_dims path; neither is reproduced)."""
    x, y = ctx.t(0), ctx.t(0, outputs=True)
    ctx.int8_activation(x, "input")
    ctx.int8_activation(y, "output")
    assert x.quant and y.quant
    raw_axes = [int(a) for a in ctx.const(ctx.t(1), "axis", "int32").reshape(-1)]
    rank = len(x.shape)
    axes = sorted({a + rank if a < 0 else a for a in raw_axes})
    if any(a < 0 or a >= rank for a in axes):
        raise ctx.fail(f"axis {raw_axes} out of range for rank {rank}")
    if len(axes) > 2:
        raise ctx.fail(f"reducing {len(axes)} axes {raw_axes}: TFLM supports at most 2",
                       "Reshape so that the reduced dimensions form at most two axes")
    if not axes:
        return _copy_step(ctx, x, y, "MEAN over no axis is a copy")
    # Size-1 dimensions do not affect the memory order: the reduced axes must be one contiguous run
    # among the others, giving an [outer, reduce, inner] view of the input.
    real = [(x.shape[d], d in axes) for d in range(rank) if x.shape[d] > 1]
    flags = [r for _, r in real]
    if True in flags:
        first = flags.index(True)
        last = len(flags) - 1 - flags[::-1].index(True)
        if not all(flags[first:last + 1]):
            raise ctx.fail(f"reducing non-adjacent axes {raw_axes} of {list(x.shape)} is not supported")
        inner = int(np.prod([s for s, _ in real[last + 1:]], dtype=np.int64))
    else:
        first, inner = len(flags), 1
    outer = int(np.prod([s for s, _ in real[:first]], dtype=np.int64))
    count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    if outer * inner != y.num_elements:
        raise ctx.fail(f"output has {y.num_elements} elements, expected {outer * inner}")
    multiplier, shift = quant.mean_multiplier(x.quant.scale, y.quant.scale, count)
    params: dict[str, Any] = dict(input=x.index, output=y.index, outer=outer, reduce=count, inner=inner,
                                  input_zp=x.quant.zero_point, output_zp=y.quant.zero_point,
                                  multiplier=multiplier, shift=shift)
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel="mean", output_name=y.name,
        inputs=[x.index], outputs=[y.index], params=params,
        summary=f"{list(x.shape)} axes {raw_axes} -> {list(y.shape)}",
    )


def _copy_step(ctx: _Ctx, x: Tensor, y: Tensor, why: str) -> Step:
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel="copy", output_name=y.name,
        inputs=[] if x.is_const else [x.index], outputs=[y.index],
        const_inputs=[x.index] if x.is_const else [],
        params=dict(input=x.index, output=y.index, size=y.nbytes), summary=why,
    )


def _requantize_step(ctx: _Ctx, x: Tensor, y: Tensor, mult: int, shift: int, in_offset: int, out_offset: int,
                     act: tuple[int, int], summary: str) -> Step:
    if x.num_elements != y.num_elements:
        raise ctx.fail(f"input has {x.num_elements} elements, output {y.num_elements}")
    return Step(
        op_index=ctx.op.index, op_type=ctx.op.op_type, kernel="requantize", output_name=y.name,
        inputs=[x.index], outputs=[y.index],
        params=dict(input=x.index, output=y.index, size=y.num_elements, input_offset=in_offset,
                    multiplier=mult, shift=shift, output_offset=out_offset, act_min=act[0], act_max=act[1]),
        inplace=[(y.index, x.index)], summary=summary,
    )


def _quantize(ctx: _Ctx) -> Step:
    x, y = ctx.t(0), ctx.t(0, outputs=True)
    if x.dtype != "int8":
        raise ctx.fail(f"input '{x.name}' is {x.dtype}; only int8 -> int8 requantization is supported",
                       "Convert with inference_input_type=tf.int8 so the model takes int8 input")
    ctx.int8_activation(x, "input")
    ctx.int8_activation(y, "output")
    assert x.quant and y.quant
    mult, shift = quant.quantize_multiplier(x.quant.scale / y.quant.scale)
    return _requantize_step(ctx, x, y, mult, shift, -x.quant.zero_point, y.quant.zero_point,
                            (quant.INT8_MIN, quant.INT8_MAX), f"{list(x.shape)} requantize")


def _relu(ctx: _Ctx) -> Step:
    x, y = ctx.t(0), ctx.t(0, outputs=True)
    ctx.int8_activation(x, "input")
    ctx.int8_activation(y, "output")
    assert x.quant and y.quant
    if ctx.op.op_type == "RELU6":
        # TFLM clamps the raw input to [zp_in, q(6)] without rescaling.
        six = quant.float_to_quantized_int8(6.0, x.quant.scale, x.quant.zero_point)
        return _requantize_step(ctx, x, y, 1 << 30, 1, 0, 0, (x.quant.zero_point, six), f"{list(x.shape)} clamp")
    mult, shift = quant.quantize_multiplier(x.quant.scale / y.quant.scale)
    lo = max(quant.INT8_MIN, y.quant.zero_point)  # zp + round(0 / scale)
    return _requantize_step(ctx, x, y, mult, shift, -x.quant.zero_point, y.quant.zero_point,
                            (lo, quant.INT8_MAX), f"{list(x.shape)} relu")


_LOWERINGS: dict[str, Callable[[_Ctx], Step]] = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _depthwise,
    "FULLY_CONNECTED": _fully_connected,
    "AVERAGE_POOL_2D": _pool,
    "MAX_POOL_2D": _pool,
    "ADD": _binary,
    "MUL": _binary,
    "SOFTMAX": _softmax,
    "RESHAPE": _alias,
    "SQUEEZE": _alias,
    "EXPAND_DIMS": _alias,
    "CONCATENATION": _concatenation,
    "PAD": _pad,
    "PADV2": _pad,
    "MEAN": _mean,
    "QUANTIZE": _quantize,
    "RELU": _relu,
    "RELU6": _relu,
}

SUPPORTED_OPS: tuple[str, ...] = tuple(sorted(_LOWERINGS))


def lower_graph(graph: Graph, backends: tuple[str, ...] = scr.DEFAULT_BACKENDS) -> list[Step]:
    """Lower every operator of ``graph``; raises :class:`UnsupportedOpError` at the first one we cannot do."""
    steps = []
    for op in graph.operators:
        ctx = _Ctx(graph, op, backends)
        lowering = _LOWERINGS.get(op.op_type)
        if lowering is None:
            raise ctx.fail(
                "operator is not supported by the CMSIS-NN code generator",
                f"Supported: {', '.join(SUPPORTED_OPS)}. Replace it in the model or keep it on another partition")
        if any(graph.tensors[t].is_variable for t in op.inputs if t >= 0):
            raise ctx.fail("stateful (variable) tensors are not supported")
        steps.append(lowering(ctx))
    # Ops check their own tensors; this catches what no op touches (e.g. an input wired straight to an output).
    for i in graph.inputs + graph.outputs:
        t = graph.tensors[i]
        if t.dtype != "int8" or t.quant is None:
            role = "input" if i in graph.inputs else "output"
            raise UnsupportedOpError(
                "MODEL", -1, t.name, f"model {role} '{t.name}' is {t.dtype}"
                f"{'' if t.quant else ' without quantization'}; the module takes and returns quantized int8",
                "Convert with inference_input_type=tf.int8 and inference_output_type=tf.int8")
    return steps
