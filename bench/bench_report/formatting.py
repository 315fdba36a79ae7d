"""What every section of BENCHMARKS.md shares: titles, published figures, number formats and the table."""
from __future__ import annotations

from typing import Any

SCHEME_TITLE = {"vanilla": "Vanilla", "dfg": "deepFogGuard", "resilinet": "ResiliNet", "resilinet_plus": "ResiliNet+"}
MLPERF_TITLE = {"ic_resnet8_int8": "ResNet-8 (IC)", "kws_dscnn_int8": "DS-CNN (KWS)",
                "ad_autoencoder_int8": "FC autoencoder (AD)"}
CONV_CATEGORIES = ("conv (im2col)", "conv 1x1 (stride 1)", "conv 1x1 (strided)")
#: MLPerf Tiny closed division, NUCLEO-L4R5ZI (Cortex-M4 @ 120 MHz), ms per inference (docs/cmsis-nn.md §2a).
PUBLISHED_MS = {
    "TFLM 2.3.1 + CMSIS-NN (v0.5 reference)": {"KWS": 181.9, "IC": 704.2, "AD": 10.05},
    "microTVM + CMSIS-NN (v1.0)": {"KWS": 99.8, "IC": 389.6, "AD": 8.60},
    "Plumerai (v1.1)": {"KWS": 47.8, "IC": 167.8, "AD": 4.05},
    "X-CUBE-AI 9.0 (v1.2)": {"KWS": 43.2, "IC": 165.1, "AD": 5.26},
}
MLPERF_TASK = {"ic_resnet8_int8": "IC", "kws_dscnn_int8": "KWS", "ad_autoencoder_int8": "AD"}


def n0(x: Any) -> str:
    """A count with thousands separators; an em dash for a figure that was not measured."""
    return "—" if x is None else f"{x:,.0f}"


def f2(x: Any, nd: int = 2) -> str:
    """A figure with ``nd`` decimals; an em dash for a figure that was not measured."""
    return "—" if x is None else f"{x:,.{nd}f}"


def pct(x: Any, nd: int = 2) -> str:
    """A fraction as a percentage (without the sign); an em dash for a figure that was not measured."""
    return "—" if x is None else f"{100 * x:.{nd}f}"


def table(header: list[str], rows: list[list[Any]], right: set[int] | None = None) -> str:
    """A Markdown table; columns in ``right`` (default: all but the first) are right-aligned."""
    right = right if right is not None else set(range(1, len(header)))
    sep = ["---:" if i in right else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(sep) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def err_of(sec: dict[str, Any] | None) -> str | None:
    """Why a section has no figures (not run, or failed), or None when it has them."""
    if sec is None:
        return "section not run"
    return sec.get("error")
