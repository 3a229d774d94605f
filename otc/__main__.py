"""``python -m otc`` — see :mod:`otc.cli`."""

from otc.cli import main

raise SystemExit(main())
