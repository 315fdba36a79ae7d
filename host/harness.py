"""``python -m host.harness``: the harness CLI lives in :mod:`host.net.harness`; this name is the promised command."""
import sys

from host.net.harness import main

if __name__ == "__main__":
    sys.exit(main())
