"""Shared pytest configuration.

Hypothesis: no deadline (the first call of a jitted function compiles), a
modest number of examples so the suite stays fast on 2 CPU cores, and
derandomised under CI so a red build is reproducible from its log.
"""

import os
import tempfile

# One persistent XLA compilation cache per test run, shared by the xdist workers
# and the subprocesses the tests start (set before JAX is imported): the same
# programs (a smoke preset's steps, the models of the resume tests) compile once
# per run instead of once per process. A fresh run starts with an empty cache.
_RUN_ID = os.environ.get("PYTEST_XDIST_TESTRUNUID") or str(os.getpid())
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), f"defects_jax_tests_xla_{_RUN_ID}"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.3")

import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position
from hypothesis import HealthCheck  # pylint: disable=g-import-not-at-top,wrong-import-position
from hypothesis import settings  # pylint: disable=g-import-not-at-top,wrong-import-position

settings.register_profile(
    "dev",
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("ci", parent=settings.get_profile("dev"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.hookimpl(optionalhook=True)  # (pytest-xdist's hook; absent with -p no:xdist)
def pytest_xdist_auto_num_workers(config):
  """`-n auto`: one worker more than the cores, at most 4. Much of the suite is
  single-threaded XLA compilation; on a 2-core machine three workers finished
  the suite in 448 s, two in 500 s, four in 504 s (measured at one commit)."""
  del config
  return min(4, (os.cpu_count() or 1) + 1)
