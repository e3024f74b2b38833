"""`python -m client ...`: the same as the installed `recsys` command."""
import sys

from client.cli import main

sys.exit(main())
