"""``python -m harness.toxiproxy [--host H] [--port P]``."""

from harness.toxiproxy.cli import main

raise SystemExit(main())
