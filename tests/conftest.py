"""Shared pytest configuration.

Hypothesis: no deadline (the first call of a jitted function compiles), a
modest number of examples so the suite stays fast on 2 CPU cores, and
derandomised under CI so a red build is reproducible from its log.
"""

import os

from hypothesis import HealthCheck
from hypothesis import settings

settings.register_profile(
    "dev",
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("ci", parent=settings.get_profile("dev"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
