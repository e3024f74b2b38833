"""`python -m client ...`: the same as the installed `recsys` command."""
import sys

from .cli import main

sys.exit(main())
