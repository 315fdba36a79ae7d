"""``manifest.json``: what ``python -m host.build`` leaves for the next stage, typed and versioned.

One writer, :func:`write_manifest`, and one reader, :func:`read_manifest`; every stage, the harness and
PlatformIO's ini writer use these records, never the raw JSON. The reader fails with one
:class:`ManifestError` that names the file, the key and what to do::

    build/demo/manifest.json: key 'nodes.iot.arena_bytes' is a string ("288"), expected an integer; rebuild
    it with python -m host.build ... --out build/demo

The JSON layout is version 1's as host.build has written it since the distillation presets (``seed``,
``replicas``); the key order of every object is the order of the fields below, so such manifests read
unchanged and are written back byte for byte. Older ones lack ``seed`` and are refused by name.

What a build writes, stage by stage (``--stop-after``):

* train: build settings, :class:`DatasetInfo`, the topology, per node its role and board
  (:class:`Node` with ``model`` None), ``stages.train``/``stages.evaluate``, timings;
* nodes: per node its int8 model and C module (:class:`NodeModel`), the :class:`Link` table with each
  link's int8 scale/zero point, ``stages.nodes``;
* firmware: per node its image (:class:`FirmwareImage`) and PlatformIO environment (:class:`PioEnv`,
  :class:`Emulator`), link ids, ``sensor_links``, ``stages.firmware``, ``platformio``.
"""
from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

#: The layout this reader and writer know; a manifest with another ``manifest_version`` is refused.
#: Version 2 adds per link ``bits``, ``code_lo`` and ``wire_bytes`` (low-bit link codes, host/ml/link_codes.py);
#: absent (every version-1 manifest) = an 8-bit link whose wire bytes are its tensor bytes.
MANIFEST_VERSION = 2
KNOWN_VERSIONS = (1, 2)
MANIFEST_NAME = "manifest.json"
STAGES = ("train", "nodes", "firmware")
Stage = Literal["train", "nodes", "firmware"]

# Field metadata understood by the codec below.
#: the JSON key when it differs from the field name
KEY = "key"
#: the key may be absent (the stage that writes it has not run); None is then written as no key at all
OPTIONAL = {"optional": True}
#: the fields of this (optional) record sit in the enclosing JSON object, not in an object of their own
FLAT = {"flatten": True, "optional": True}


def hex_digest(digits: int, **meta: Any) -> dict[str, Any]:
    """Metadata of a string field that must be a lowercase hex hash of ``digits`` digits."""
    return {"hex": digits, **meta}


class ManifestError(ValueError):
    """A manifest this checkout cannot use. ``str()`` names the file, the key and what to do.

    A ValueError, so that command-line tools that report bad input (the harness) report this too.
    """

    def __init__(self, source: str, key: str | None, problem: str, todo: str) -> None:
        where = f"key '{key}' " if key else ""
        super().__init__(f"{source}: {where}{problem}; {todo}")
        self.source, self.key, self.problem = source, key, problem


# ---- The records ---------------------------------------------------------------------------------


@dataclass
class DatasetInfo:
    name: str
    train: int
    val: int
    test: int
    num_classes: int
    input_shape: list[int]


@dataclass
class NodeInput:
    """One input tensor of a node's model: where it comes from and its int8 parameters."""

    name: str
    position: int                  # index among the .tflite's inputs
    c_index: int                   # index among the generated C function's inputs
    primary: str | None            # the link from below (None: a sensor's features, or a standby input)
    fallback: str | None           # the skip used when ``primary`` is missing (mux / standby)
    replicas: list[str]            # averaged links (a distillation aggregator)
    shape: list[int]
    scale: float
    zero_point: int
    bytes: int


@dataclass
class NodeOutput:
    name: str
    position: int
    c_index: int
    links: list[str]               # links this tensor is sent on
    result: bool                   # the RESULT sent to the host
    shape: list[int]
    scale: float
    zero_point: int
    bytes: int


@dataclass
class NodeModel:
    """Stage nodes: a node's int8 model and generated C module (paths relative to the build directory)."""

    aggregation: str               # source | single | mux | sum | average ...
    features: list[int] | None     # a sensor's share of the input features (None: all)
    tflite: str
    c: str
    h: str
    module: str                    # C prefix: <module>_invoke, <module>.h
    inputs: list[NodeInput]
    outputs: list[NodeOutput]
    model_sha256: str = field(metadata=hex_digest(64))
    arena_bytes: int
    arena_lower_bound: int
    scratch_bytes: int
    weight_bytes: int
    quant_param_bytes: int
    macs: int
    #: arena bytes of state kept between invocations (LSTM): the board resets it before every sample.
    #: Absent in builds made before recurrent nodes (read as None: stateless).
    state_bytes: int | None = field(default=None, metadata=OPTIONAL)


@dataclass
class FirmwareImage:
    """Stage firmware: a node's image as host.build linked it (paths relative to the build directory)."""

    node_id: int
    board: str
    config_header: str
    elf: str
    bin: str
    flash_bytes: int
    ram_bytes: int
    board_flash_bytes: int
    board_ram_bytes: int
    model_hash: str = field(metadata=hex_digest(16))   # first 8 bytes of model_sha256, as the board reports it


@dataclass
class PioEnv:
    env: str


@dataclass
class Emulator:
    """Where ``pio run -t upload`` starts an emulated board (paths relative to the build directory)."""

    port: int
    pidfile: str
    url: str
    elf: str


@dataclass
class Node:
    role: str
    failable: bool
    model: NodeModel | None = field(default=None, metadata=FLAT)
    board: str = ""
    node_id: int | None = field(default=None, metadata=OPTIONAL)
    firmware: FirmwareImage | None = field(default=None, metadata=OPTIONAL)
    platformio: PioEnv | None = field(default=None, metadata=OPTIONAL)
    emulator: Emulator | None = field(default=None, metadata=OPTIONAL)

    def require_model(self) -> NodeModel:
        if self.model is None:
            raise ValueError(f"node without an int8 model ({self.role}): run host.build through stage nodes")
        return self.model

    def require_firmware(self) -> FirmwareImage:
        if self.firmware is None:
            raise ValueError(f"node without firmware ({self.role}): run host.build through stage firmware")
        return self.firmware


@dataclass
class Link:
    """A directed tensor link; both ends use its one int8 scale/zero point."""

    src: str
    dst: str
    skip: bool
    shape: list[int]
    bytes: int
    output: str                    # the sender's output tensor
    scale: float
    zero_point: int
    #: bits per element on the wire (2 or 4: packed codes c = q - code_lo; None: 8, plain int8)
    bits: int | None = field(default=None, metadata=OPTIONAL)
    code_lo: int | None = field(default=None, metadata=OPTIONAL)   # the int8 value of code 0
    wire_bytes: int | None = field(default=None, metadata=OPTIONAL)  # packed tensor bytes (DATA payload)
    id: int | None = field(default=None, metadata=OPTIONAL)   # on the wire (stage firmware)

    @property
    def wire_bits(self) -> int:
        return self.bits or 8


@dataclass
class TrainStage:
    """How the model was obtained: trained (cache_key, config, history) or distilled (distillation)."""

    model: str
    cache_key: str | None = field(default=None, metadata=OPTIONAL)
    distillation: dict[str, Any] | None = field(default=None, metadata=OPTIONAL)
    cached: bool = False
    config: dict[str, Any] | None = field(default=None, metadata=OPTIONAL)
    best_epoch: int | None = field(default=None, metadata=OPTIONAL)
    train_seconds: float | None = field(default=None, metadata=OPTIONAL)
    history: dict[str, list[float]] | None = field(default=None, metadata=OPTIONAL)


@dataclass
class EvaluateStage:
    report: str
    json: str
    plot: str
    no_failure_accuracy: float | None
    average_accuracy: dict[str, float]


@dataclass
class NodeFit:
    """A node's model bytes against its board, estimated before linking."""

    model_flash_bytes: int
    model_ram_bytes: int
    board: str
    board_flash_bytes: int
    board_ram_bytes: int
    fits: bool


@dataclass
class NodesStage:
    report: str
    timings_s: dict[str, float]
    int8_eval_samples: int
    int8_accuracy: list[float | None]      # per failure configuration (None: no path)
    float_accuracy: list[float | None]     # the same samples, float model
    fit: dict[str, NodeFit]
    seconds: float


@dataclass
class FirmwareStage:
    deadline_ms: int
    seconds: float


@dataclass
class Stages:
    train: TrainStage
    evaluate: EvaluateStage
    nodes: NodesStage | None = field(default=None, metadata=OPTIONAL)
    firmware: FirmwareStage | None = field(default=None, metadata=OPTIONAL)


@dataclass
class Timings:
    data: float
    train: float
    evaluate: float


@dataclass
class PlatformIOSection:
    ini: str                       # the platformio.ini written for this build
    envs: list[str]


@dataclass
class Manifest:
    """A build directory's ``manifest.json``; paths in it are relative to the build directory."""

    version: int = field(metadata={KEY: "manifest_version"})
    preset: str
    partition: str
    scheme: str
    board: str
    seed: int
    dataset: DatasetInfo
    topology: dict[str, Any]       # host.ml.topology.Topology.to_dict(); its own format
    nodes: dict[str, Node]         # data-flow order
    stages: Stages
    timings_s: Timings
    links: dict[str, Link] | None = field(default=None, metadata=OPTIONAL)
    sensor_links: dict[str, int] | None = field(default=None, metadata=OPTIONAL)  # sensor -> id of its feed
    platformio: PlatformIOSection | None = field(default=None, metadata=OPTIONAL)

    # What the harness needs from the topology (checked by the reader).
    @property
    def failure_order(self) -> list[str]:
        return list(self.topology["failure_order"])

    @property
    def reliability(self) -> dict[str, dict[str, float]]:
        return {k: dict(v) for k, v in self.topology["reliability"].items()}

    def require_links(self) -> dict[str, Link]:
        if self.links is None:
            raise ValueError("manifest without links: run host.build through stage nodes")
        return self.links

    def stages_done(self) -> list[str]:
        """The build stages this manifest went through (see :data:`STAGES`)."""
        return [s for s in STAGES if s == "train" or getattr(self.stages, s) is not None]


#: The parts of the topology the reader checks (the rest is host.ml.topology's business).
TOPOLOGY_KEYS: dict[str, Any] = {"dataset": dict[str, Any], "failure_order": list[str],
                                 "reliability": dict[str, dict[str, float]]}


# ---- The one writer -------------------------------------------------------------------------------


def manifest_path(build: str | Path) -> Path:
    """``build/manifest.json`` for a build directory; a path to a ``.json`` file is taken as is."""
    build = Path(build)
    return build if build.suffix == ".json" else build / MANIFEST_NAME


def to_json(manifest: Manifest) -> dict[str, Any]:
    """The JSON object of ``manifest`` (keys in field order, absent stages left out)."""
    return encode(manifest)


def dumps(manifest: Manifest) -> str:
    """The text :func:`write_manifest` writes."""
    return json.dumps(to_json(manifest), indent=1)


def write_manifest(manifest: Manifest, build: str | Path) -> Path:
    """Write ``build/manifest.json`` (or the ``.json`` path given); returns its path."""
    path = manifest_path(build)
    path.write_text(dumps(manifest))
    return path


def encode(value: Any) -> Any:
    """The JSON value of a record of this module (or of dicts/lists of them), as the writer writes it."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if f.metadata.get("optional") and v is None:
                continue
            if f.metadata.get("flatten"):
                out.update(encode(v))
            else:
                out[f.metadata.get(KEY, f.name)] = encode(v)
        return out
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    return value


# ---- The one reader -------------------------------------------------------------------------------


def read_manifest(build: str | Path, *, stage: Stage = "train") -> Manifest:
    """Read and check ``build/manifest.json``; ``stage``: the last build stage it must have been through.

    Raises :class:`ManifestError` (file missing, not JSON, a key missing or of the wrong type, a bad hex
    hash, an unknown version, or a stage not run), naming the file, the key and what to do.
    """
    path = manifest_path(build)
    todo = rebuild_hint(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ManifestError(str(path), None, "no such file", todo.replace("rebuild it", "build one")) from None
    except OSError as err:
        raise ManifestError(str(path), None, f"cannot be read ({err.strerror})", todo) from None
    except UnicodeDecodeError as err:
        raise ManifestError(str(path), None, f"is not UTF-8 text ({err.reason} at byte {err.start})", todo) from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise ManifestError(str(path), None, f"is not JSON ({str(err)[:80]})", todo) from None
    return parse_manifest(data, str(path), stage=stage, todo=todo)


def rebuild_hint(path: Path) -> str:
    """What to do about a bad manifest at ``path``: build that directory again."""
    return f"rebuild it with python -m host.build ... --out {path.parent}"


def parse_manifest(data: Any, source: str, *, stage: Stage = "train", todo: str | None = None) -> Manifest:
    """The :class:`Manifest` of a JSON object read from ``source`` (see :func:`read_manifest`)."""
    todo = todo or rebuild_hint(Path(source))
    codec = _Decoder(source, todo)
    if not isinstance(data, dict):
        raise ManifestError(source, None, f"holds {_kind(data)}, expected a JSON object", todo)
    version = data.get("manifest_version")
    if "manifest_version" not in data:
        raise ManifestError(source, "manifest_version", "missing (not a host.build manifest?)", todo)
    if type(version) is not int or version not in KNOWN_VERSIONS:
        raise ManifestError(source, "manifest_version", f"is {version!r}; this checkout reads version "
                            f"{', '.join(map(str, KNOWN_VERSIONS))}", todo)
    manifest = codec.record(data, Manifest, "")
    for key, tp in TOPOLOGY_KEYS.items():
        codec.value(codec.key(manifest.topology, key, "topology"), tp, f"topology.{key}")
    codec.value(codec.key(manifest.topology["dataset"], "name", "topology.dataset"), str, "topology.dataset.name")
    _check_stage(manifest, stage, source, todo)
    return manifest


def _check_stage(m: Manifest, stage: Stage, source: str, todo: str) -> None:
    """That the build went through ``stage``: the keys each stage up to it writes are there."""
    need: list[tuple[bool, str, str]] = []
    if STAGES.index(stage) >= STAGES.index("nodes"):
        need += [(m.stages.nodes is not None, "stages.nodes", "nodes"), (m.links is not None, "links", "nodes")]
        need += [(n.model is not None, f"nodes.{name}.tflite", "nodes") for name, n in m.nodes.items()]
    if stage == "firmware":
        need += [(m.stages.firmware is not None, "stages.firmware", "firmware"),
                 (m.sensor_links is not None, "sensor_links", "firmware")]
        need += [(n.firmware is not None, f"nodes.{name}.firmware", "firmware") for name, n in m.nodes.items()]
        need += [(n.node_id is not None, f"nodes.{name}.node_id", "firmware") for name, n in m.nodes.items()]
        need += [(l.id is not None, f"links.{name}.id", "firmware") for name, l in (m.links or {}).items()]
    for ok, key, by in need:
        if not ok:
            raise ManifestError(source, key, f"missing: the build stopped before stage {by} (--stop-after?)", todo)


def _kind(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
             dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


_EXPECTED = {str: "a string", int: "an integer", float: "a number", bool: "a boolean"}
T = TypeVar("T")


class _Decoder:
    """Checks a JSON value against a type of this module and builds the records (errors name the key)."""

    def __init__(self, source: str, todo: str) -> None:
        self.source, self.todo = source, todo

    def fail(self, key: str, problem: str) -> ManifestError:
        return ManifestError(self.source, key, problem, self.todo)

    def key(self, obj: dict[str, Any], name: str, where: str) -> Any:
        if name not in obj:
            raise self.fail(f"{where}.{name}" if where else name, "missing")
        return obj[name]

    def record(self, obj: Any, cls: type[T], where: str) -> T:
        if not isinstance(obj, dict):
            raise self.fail(where, f"is {_kind(obj)}, expected an object")
        hints = _hints(cls)
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            name = f.metadata.get(KEY, f.name)
            path = f"{where}.{name}" if where else name
            if f.metadata.get("flatten"):
                inner = _strip_none(hints[f.name])
                first = dataclasses.fields(inner)[0].name
                kwargs[f.name] = self.record(obj, inner, where) if first in obj else None
            elif name not in obj and f.metadata.get("optional"):
                kwargs[f.name] = None
            else:
                kwargs[f.name] = self.value(self.key(obj, name, where), hints[f.name], path)
                digits = f.metadata.get("hex")
                if digits and not re.fullmatch(f"[0-9a-f]{{{digits}}}", kwargs[f.name]):
                    raise self.fail(path, f"is {kwargs[f.name]!r}, not a {digits}-digit hex hash")
        return cls(**kwargs)

    def value(self, v: Any, tp: Any, path: str) -> Any:
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if tp is Any:
            return v
        if origin in (Union, types.UnionType):
            if v is None and type(None) in args:
                return None
            return self.value(v, _strip_none(tp), path)
        if dataclasses.is_dataclass(tp):
            return self.record(v, tp, path)
        if origin is list:
            if not isinstance(v, list):
                raise self.fail(path, f"is {_kind(v)}, expected a list")
            return [self.value(x, args[0], f"{path}[{i}]") for i, x in enumerate(v)]
        if origin is dict:
            if not isinstance(v, dict):
                raise self.fail(path, f"is {_kind(v)}, expected an object")
            return {k: self.value(x, args[1], f"{path}.{k}") for k, x in v.items()}
        ok = (isinstance(v, (int, float)) and not isinstance(v, bool)) if tp is float else \
            (type(v) is int) if tp is int else isinstance(v, tp)
        if not ok:
            raise self.fail(path, f"is {_kind(v)} ({json.dumps(v)[:40]}), expected {_EXPECTED.get(tp, tp)}")
        return v


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _strip_none(tp: Any) -> Any:
    """``X | None`` -> ``X``."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if len(args) == 1 else Union[tuple(args)]
