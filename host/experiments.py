"""``python -m host.experiments``: the experiments CLI lives in :mod:`host.ml.experiments`."""
import sys

from host.ml.experiments import main

if __name__ == "__main__":
    sys.exit(main())
