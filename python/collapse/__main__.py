"""python -m collapse: the command line (collapse.cli)."""

import sys

from .cli import main

sys.exit(main())
