"""``python -m benchmarks``: run the suite (see :mod:`benchmarks.suite`)."""

import sys

from .suite import main

sys.exit(main())
