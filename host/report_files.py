"""Reports: one Markdown, one JSON and one PNG per experiment, written side by side."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

SETTING_ORDER = ("No failure", "Normal", "Poor", "Hazardous")


def pct(v: float | None, std: float | None = None) -> str:
    if v is None:
        return "—"
    return f"{100 * v:.2f}" + (f" ± {100 * std:.2f}" if std is not None else "")


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(map(str, header)) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines)


def write_report(out_dir: Path, stem: str, markdown: str, data: dict[str, Any],
                 plot: Callable[[Any], None] | None = None) -> dict[str, Path]:
    """Write ``stem.md``, ``stem.json`` and (if ``plot`` is given) ``stem.png``; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"md": out_dir / f"{stem}.md", "json": out_dir / f"{stem}.json"}
    if plot is not None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
        plot(ax)
        fig.tight_layout()
        paths["png"] = out_dir / f"{stem}.png"
        fig.savefig(paths["png"])
        plt.close(fig)
        markdown += f"\n\n![{stem}]({stem}.png)\n"
    paths["md"].write_text(markdown)
    paths["json"].write_text(json.dumps(data, indent=1, default=_jsonable))
    return paths


def grouped_bars(ax, groups: Sequence[str], series: dict[str, Sequence[float | None]], *,
                 ylabel: str = "accuracy (%)", errors: dict[str, Sequence[float]] | None = None,
                 caps: Sequence[float] | None = None, title: str = "") -> None:
    """Bars per group (x) for each series (colour); optional error bars and a cap marker per group."""
    import numpy as np

    n = max(1, len(series))
    width = 0.8 / n
    x = np.arange(len(groups))
    for i, (name, vals) in enumerate(series.items()):
        v = [100 * (a if a is not None else 0.0) for a in vals]
        err = [100 * e for e in errors[name]] if errors and name in errors else None
        ax.bar(x + (i - (n - 1) / 2) * width, v, width, yerr=err, label=name, capsize=2)
    if caps is not None:
        for xi, c in zip(x, caps):
            ax.hlines(100 * c, xi - 0.45, xi + 0.45, colors="k", linestyles="dashed", linewidth=1)
        ax.plot([], [], "k--", linewidth=1, label="path-probability cap")
    ax.set_xticks(x)
    ax.set_xticklabels(groups, rotation=0 if len(groups) < 6 else 30, ha="center" if len(groups) < 6 else "right")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 105)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(axis="y", alpha=0.3)


def _jsonable(o: Any) -> Any:
    try:
        import numpy as np
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if hasattr(o, "__dataclass_fields__"):
        from dataclasses import asdict
        return asdict(o)
    return str(o)
