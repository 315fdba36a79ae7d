"""``python -m host.ml.datasets NAME [key=value ...]``: load a dataset and print what it holds.

Handy to check a user's data is found and shaped as expected before a long training run.
"""
from __future__ import annotations

import argparse
import ast
import sys
import time

from host.ml.datasets import DATASETS
from host.ml.datasets import DatasetNotFoundError, DatasetOptionError
from host.ml.datasets import describe
from host.ml.datasets import load_dataset


def _value(text: str) -> object:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # plain strings need no quotes on the command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m host.ml.datasets", description=__doc__)
    parser.add_argument("name", choices=sorted(DATASETS))
    parser.add_argument("options", nargs="*", metavar="key=value", help="loader options, e.g. mode=windowed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    options = {}
    for item in args.options:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"option {item!r} is not key=value")
        options[key] = _value(value)
    start = time.perf_counter()
    try:
        ds = load_dataset(args.name, data_dir=args.data_dir, seed=args.seed, **options)
    except (DatasetNotFoundError, DatasetOptionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(describe(ds))
    print(f"loaded in {time.perf_counter() - start:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
