"""Learning-rate schedules of the papers, as optax schedules (step -> lr)."""

from __future__ import annotations

from typing import Sequence

import optax


def constant(lr: float) -> optax.Schedule:
  """A constant rate (res-acgan: Adam 2e-4)."""
  return optax.constant_schedule(lr)


def step_decay(lr: float, *, boundaries: Sequence[int], factor: float = 0.1) -> optax.Schedule:
  """Multiply by ``factor`` at each boundary step (weakly-supervised stage 2:
  0.01, x0.1 at iteration 600)."""
  return optax.piecewise_constant_schedule(lr, {int(b): factor for b in boundaries})


def linear_decay_after(lr: float, *, constant_steps: int, decay_steps: int) -> optax.Schedule:
  """Constant for ``constant_steps``, then linearly to 0 over ``decay_steps``
  (CycleGAN: 100 epochs constant, 100 epochs decaying; rkd-sarsn, dg2gan)."""
  return optax.join_schedules(
      [optax.constant_schedule(lr), optax.linear_schedule(lr, 0.0, decay_steps)],
      [constant_steps])
