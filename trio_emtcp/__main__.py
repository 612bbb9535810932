"""``python -m trio_emtcp``: the command-line tools (see :mod:`._cli`)."""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
