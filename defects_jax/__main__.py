"""``python -m defects_jax``: the ``defects-jax`` command line."""

import sys

from defects_jax.cli import main

sys.exit(main())
