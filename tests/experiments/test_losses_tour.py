"""Smoke test of the README's run command (experiments/losses_tour.py)."""

import re

from defects_jax import losses
from defects_jax.experiments import losses_tour


def test_tour_prints_every_loss_with_finite_values(capsys):
  losses_tour.main(["--seed", "1", "--batch", "3"])
  out = capsys.readouterr().out
  rows = [line for line in out.splitlines() if line.startswith("| ") and "paper" not in line]
  listed = {re.split(r"\s", line[2:])[0] for line in rows}
  assert listed == set(losses.__all__) - {"collaborative_alpha"}
  for line in rows:
    value, grad = (float(c) for c in line.strip("|").split("|")[2:4])
    assert value == value and grad == grad  # not NaN (main() also exits on non-finite)
  assert "collaborative_alpha" in out
