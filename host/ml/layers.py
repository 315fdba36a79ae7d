"""Custom Keras layers of the failure model: failout and the aggregation of incoming hyperconnections.

Every tensor that crosses a link travels with a *presence* flag of shape (batch, 1): 1 when the tensor
arrived, 0 when it did not (the sending node failed, or got no usable input itself). On the boards the
flag is the link itself: a DATA frame arrived, or a LINK_DOWN / deadline said it will not. In training it
is the failout draw. Receivers never infer a failure by testing activations for zero, which is where we
differ from the authors' code (their ResiliNet mux tests ``sum(x_below) == 0`` on the whole batch; with
failout zeroing whole tensors both agree in training, but a live tensor that happens to be all zero, e.g.
after a ReLU, would be misread there and is not here).
"""
from __future__ import annotations

import keras
from keras import ops

PACKAGE = "resilinet"


def _broadcast_flag(flag, x):
    """(batch, 1) -> (batch, 1, ..., 1) with the rank of x."""
    rank = len(x.shape)
    return ops.reshape(flag, (-1,) + (1,) * (rank - 1))


@keras.saving.register_keras_serializable(PACKAGE)
class Failout(keras.layers.Layer):
    """Failout (ResiliNet spec §5) on a failable node's output, plus the node's presence flag.

    Training: ONE uniform draw per forward pass (per mini-batch) for this node; if it exceeds the survival
    rate, the node's whole output is zero and absent for the whole batch. No 1/p rescaling.
    Inference: identity; the presence comes from the ``alive`` input (the failure configuration under test)
    and from whether the node had any usable input.
    """

    def __init__(self, survival: float = 1.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.survival = float(survival)
        self.seed = seed
        self._seed_gen = keras.random.SeedGenerator(seed) if seed is not None else keras.random.SeedGenerator()

    @property
    def seed_generator(self):
        """The random stream of this node's draws (saved and put back by host.ml.batchnorm_stats)."""
        return self._seed_gen

    def call(self, x, present, training=None):
        if training and self.survival < 1.0:
            u = keras.random.uniform((), seed=self._seed_gen)
            present = present * ops.cast(u <= self.survival, present.dtype)
        return x * _broadcast_flag(present, x), present

    def compute_output_shape(self, x_shape, present_shape):
        return x_shape, present_shape

    def get_config(self):
        return {**super().get_config(), "survival": self.survival, "seed": self.seed}


@keras.saving.register_keras_serializable(PACKAGE)
class Aggregate(keras.layers.Layer):
    """What a receiving node computes from its incoming links (spec §6.1), with explicit presence.

    Inputs come as ``[x_1..x_n, p_1..p_n]``: the first ``n_normal`` links are normal links (from the node(s)
    below, or several sensors), the rest are skip hyperconnections. Each x is first multiplied by its
    fixed hyperconnection weight. A missing link contributes the real value 0. Two steps, both data:

    1. ``merge`` joins the normal links (the topology node's ``merge``):
       - ``concat``: concatenated on the channel axis (several sensors into one node);
       - ``sum``: element-wise sum (e.g. the camera preset's e1 = cam1 + cam2);
       - ``average``: distilled students (NoNN's successor): link i carries a replica of part ``parts[i]``;
         each part is the mean of its replicas that are present (0 when none is), parts concatenated in
         order. With one replica per part this is NoNN's zero-filling concatenation.
    2. ``mode`` adds the skips (the scheme's aggregation; without skips ``mode`` is the merge itself):
       - ``sum``: merged normal part + the sum of the skips (deepFogGuard, ResiliNet+);
       - ``mux``: the merged normal part when at least one normal link is present, otherwise the sum of the
         skips (ResiliNet; with several normal links a missing one counts 0 in the merge, as without skips).
    ``merge=None`` (models saved before it existed): ``concat``/``average`` for those modes, else ``sum``.
    The node's own presence is 1 when at least one input is present.
    """

    def __init__(self, mode: str, n_normal: int, weights: list[float], parts: list[int] | None = None,
                 merge: str | None = None, **kwargs):
        super().__init__(**kwargs)
        if mode not in ("concat", "sum", "mux", "average"):
            raise ValueError(f"unknown aggregation {mode!r}")
        merge = merge or (mode if mode in ("concat", "average") else "sum")
        if merge not in ("concat", "sum", "average"):
            raise ValueError(f"unknown merge {merge!r} of the normal links")
        if (merge == "average") != (parts is not None):
            raise ValueError("the 'average' merge, and only it, needs the part of every normal link")
        self.mode = mode
        self.merge = merge
        self.n_normal = int(n_normal)
        self.link_weights = [float(w) for w in weights]
        self.parts = None if parts is None else [int(p) for p in parts[: self.n_normal]]

    def _merged(self, xs: list, ps: list):
        """Step 1: the normal links joined by ``merge`` (absent ones are already 0)."""
        if self.merge == "average":
            means = []
            for j in range(max(self.parts) + 1):
                members = [i for i, p in enumerate(self.parts) if p == j]
                num, den = xs[members[0]], ps[members[0]]
                for i in members[1:]:
                    num, den = num + xs[i], den + ps[i]
                means.append(num / _broadcast_flag(ops.maximum(den, 1.0), num))
            return means[0] if len(means) == 1 else ops.concatenate(means, axis=-1)
        if len(xs) == 1:
            return xs[0]
        if self.merge == "concat":
            return ops.concatenate(xs, axis=-1)
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out

    def call(self, inputs):
        n = len(inputs) // 2
        xs, ps = inputs[:n], inputs[n:]
        xs = [x * _broadcast_flag(p, x) * w for x, p, w in zip(xs, ps, self.link_weights)]
        present = ps[0]
        for p in ps[1:]:
            present = ops.maximum(present, p)
        k = self.n_normal
        out = self._merged(xs[:k], ps[:k])
        skips = xs[k:]
        if not skips:
            return out, present
        skip = skips[0]
        for x in skips[1:]:
            skip = skip + x
        if self.mode == "mux":
            below_present = ps[0]
            for p in ps[1:k]:
                below_present = ops.maximum(below_present, p)
            return out + (1.0 - _broadcast_flag(below_present, skip)) * skip, present
        return out + skip, present

    def compute_output_shape(self, input_shapes):
        n = len(input_shapes) // 2
        first = input_shapes[0]
        normal = input_shapes[: self.n_normal]
        if self.merge == "concat" and self.n_normal > 1:
            first = tuple(first[:-1]) + (sum(s[-1] for s in normal),)
        elif self.merge == "average":
            width = {p: normal[i][-1] for i, p in enumerate(self.parts)}
            first = tuple(first[:-1]) + (sum(width.values()),)
        return first, input_shapes[n]

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "n_normal": self.n_normal,
                "weights": self.link_weights, "parts": self.parts, "merge": self.merge}


@keras.saving.register_keras_serializable(PACKAGE)
class SelectFeatures(keras.layers.Layer):
    """The slice of the input features a sensor node reads (indices on the last axis)."""

    def __init__(self, indices: list[int], **kwargs):
        super().__init__(**kwargs)
        self.indices = [int(i) for i in indices]

    def call(self, x):
        return ops.take(x, self.indices, axis=-1)

    def compute_output_shape(self, shape):
        return tuple(shape[:-1]) + (len(self.indices),)

    def get_config(self):
        return {**super().get_config(), "indices": self.indices}


@keras.saving.register_keras_serializable(PACKAGE)
class NodeGate(keras.layers.Layer):
    """A node's presence: alive (from the failure configuration) AND at least one usable input.

    A node that gets no usable input produces no output (DEVELOPERS.md), so its tensor is zeroed and its
    links are marked absent; receivers then switch to a skip or count it as 0.
    """

    def call(self, alive, input_present):
        return alive * input_present

    def compute_output_shape(self, alive_shape, input_present_shape):
        return alive_shape


@keras.saving.register_keras_serializable(PACKAGE)
class AliveColumn(keras.layers.Layer):
    """One failable node's column of the ``alive`` input: (batch, N) -> (batch, 1)."""

    def __init__(self, column: int, **kwargs):
        super().__init__(**kwargs)
        self.column = int(column)

    def call(self, alive):
        return alive[:, self.column:self.column + 1]

    def compute_output_shape(self, shape):
        return (shape[0], 1)

    def get_config(self):
        return {**super().get_config(), "column": self.column}


@keras.saving.register_keras_serializable(PACKAGE)
class AlwaysPresent(keras.layers.Layer):
    """Presence of a sensor node's output: sensors are the sources and are always present."""

    def call(self, alive):
        return ops.ones_like(alive[:, :1])

    def compute_output_shape(self, shape):
        return (shape[0], 1)
