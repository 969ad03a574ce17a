"""``python -m harness.rollout --port P --prometheus URL --gateway URL ... --model NAME``."""

from harness.rollout.server import main

raise SystemExit(main())
