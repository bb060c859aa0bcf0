"""``python -m transferlab ...``: the same command line as the ``transferlab`` script."""
from .cli import main

raise SystemExit(main())
