"""``python -m recognizer.drawings``: the store's command line (recognizer/drawings/cli.py)."""

import sys

from .cli import main

sys.exit(main())
