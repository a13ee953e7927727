"""`python -m esm` is the `esm` command."""

import sys

from esm.cli import main

sys.exit(main())
