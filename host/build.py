"""``python -m host.build``: the build CLI lives in :mod:`host.deploy.cli`; this name is the promised command."""
import sys

from host.deploy.cli import main

if __name__ == "__main__":
    sys.exit(main())
