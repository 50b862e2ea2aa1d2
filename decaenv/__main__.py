"""`python -m decaenv`: the same entry point as the `decaenv` console script."""

import sys

from decaenv.cli import main

if __name__ == "__main__":
    sys.exit(main())
