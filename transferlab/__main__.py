"""``python -m transferlab ...``: the same command line as the ``transferlab`` script."""
from transferlab.cli import main

raise SystemExit(main())
