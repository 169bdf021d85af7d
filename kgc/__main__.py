"""``python -m kgc``: the ``kgc`` command."""

import sys

from kgc.cli import main

sys.exit(main())
