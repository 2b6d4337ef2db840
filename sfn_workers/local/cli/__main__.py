"""``python -m sfn_workers.local.cli``: the ``sfn-workers`` console script."""

from sfn_workers.local.cli import main

raise SystemExit(main())
