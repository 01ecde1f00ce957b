"""The training loop: jit once, log, evaluate, checkpoint, resume, stop on NaN.

The loop owns everything stateful on the host (the data iterator, the
checkpoint manager, the metrics file and the progress bar); the step stays a
pure function. One root key per run: step ``s`` uses ``fold_in(root_key, s)``.

A run folder holds::

  config.json      the resolved configuration
  metrics.jsonl    one JSON object per line: {"step", "split": "train"|"eval", ...}
  checkpoints/<step>/{state, data, config}   orbax: the state pytree (params,
                   batch statistics, optimiser state, step counters), the grain
                   iterator state and the config

Resuming (the default when ``checkpoints/`` has a step) restores all three and
continues from the saved step; metric lines written after that step by the
interrupted run are dropped, so the file reads as one uninterrupted run.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np
import orbax.checkpoint as ocp
from tqdm.auto import tqdm

from defects_jax.errors import Interrupted
from defects_jax.errors import NonFiniteError

Metrics = dict[str, Any]
# Test hook: when set to N, the loop sends SIGINT to its own process after step
# N, so tests of the interrupt path (checkpoint, exit, resume) get a real signal
# at a known step.
SIGINT_AT_STEP_ENV = "DEFECTS_JAX_SIGINT_AT_STEP"


def _device_batch(batch: dict) -> dict:
  """Drops string/object fields (ids, defect types), which jit cannot take."""
  return {k: v for k, v in batch.items()
          if not (isinstance(v, np.ndarray) and v.dtype.kind in "OSU")}


def _truncate_metrics(path: Path, last_step: int) -> None:
  if not path.exists():
    return
  kept = [line for line in path.read_text().splitlines()
          if line.strip() and json.loads(line).get("step", 0) <= last_step]
  path.write_text("".join(line + "\n" for line in kept))


def read_metrics(path: str | os.PathLike) -> list[dict]:
  """The lines of a ``metrics.jsonl`` as dicts."""
  return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def train(
    *,
    state: Any,
    train_step: Callable,
    loader,
    root_key: jax.Array,
    workdir: str | os.PathLike,
    num_steps: int,
    config: dict | None = None,
    eval_fn: Callable[[Any], dict[str, float]] | None = None,
    eval_every: int = 0,
    log_every: int = 10,
    checkpoint_every: int = 0,
    max_to_keep: int = 2,
    resume: bool = True,
    progress: bool = True,
    description: str = "train",
    log: Callable[[str], None] | None = None,
    stop: "StopSignal | None" = None,
) -> tuple[Any, list[dict]]:
  """Runs ``train_step`` for ``num_steps`` steps with logging and checkpoints.

  Args:
    state: initial state pytree (the restore target when resuming).
    train_step: pure ``(state, batch, key) -> (state, metrics)``; jitted here
      once, with the state donated.
    loader: a grain ``IterDataset`` (e.g. from
      :func:`defects_jax.data.make_loader`); must yield at least
      ``num_steps`` batches (use ``num_epochs=None``).
    root_key: the run's root PRNG key.
    workdir: the run folder.
    num_steps: total steps of the run (not the number left).
    config: JSON-serialisable resolved configuration, saved with the run.
    eval_fn: ``state -> {name: float}``, called every ``eval_every`` steps
      and at the end.
    eval_every: 0 = only at the end.
    log_every: steps between metric lines (each is a device sync).
    checkpoint_every: 0 = only at the end.
    max_to_keep: checkpoints kept.
    resume: continue from the latest checkpoint in ``workdir`` if there is one.
    progress: show a tqdm progress bar with the current loss (on a terminal;
      non-interactive output such as CI logs gets none).
    description: progress-bar label (and the prefix of log lines).
    log: when given, called with a plain line (step, metrics, steps/s, ETA)
      at every metric flush: for logs without a terminal, where the progress
      bar stays off.
    stop: a :class:`StopSignal`; when it has been triggered (SIGINT /
      SIGTERM), the loop saves a checkpoint at the next step boundary and
      raises :class:`~defects_jax.errors.Interrupted`.

  Returns:
    (final state, the metric lines written by this call).

  Raises:
    NonFiniteError: a metric was NaN or inf; the message names the step and
      the metric. No checkpoint is written past the last finite step.
    Interrupted: ``stop`` was triggered; the checkpoint of the step reached
      is saved (resume continues from it).
  """
  workdir = Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  config = dict(config or {})
  (workdir / "config.json").write_text(json.dumps(config, indent=1, sort_keys=True, default=str))
  metrics_path = workdir / "metrics.jsonl"
  manager = ocp.CheckpointManager(
      (workdir / "checkpoints").absolute(), item_names=("state", "data", "config"),
      options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))
  iterator = iter(loader)
  start = 0
  latest = manager.latest_step() if resume else None
  if latest is not None:
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, state)
    restored = manager.restore(latest, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), data=ocp.args.JsonRestore()))
    state = restored.state
    iterator.set_state(restored.data)
    start = int(latest)
    _truncate_metrics(metrics_path, start)
  elif metrics_path.exists():
    metrics_path.unlink()

  with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Some donated buffers were not usable")
    step_fn = jax.jit(train_step, donate_argnums=(0,))

  written: list[dict] = []
  pending: list[tuple[int, Metrics]] = []
  # disable=None: tqdm shows the bar on a terminal and stays quiet in logs (CI).
  bar = tqdm(total=num_steps, initial=start, desc=description,
             disable=None if progress else True, dynamic_ncols=True, leave=True)

  def write(line: dict):
    with metrics_path.open("a") as f:
      f.write(json.dumps(line, sort_keys=True) + "\n")
    written.append(line)

  def flush():
    if not pending:
      return
    host = jax.device_get(pending)
    pending.clear()
    for step, metrics in host:
      for name, value in metrics.items():
        if not np.all(np.isfinite(value)):
          bar.close()
          raise NonFiniteError(
              f"{description}: metric {name!r} is {value} at step {step}; stopping. The last "
              f"checkpoint is step {manager.latest_step()} in {workdir / 'checkpoints'}.")
    names = host[0][1].keys()
    line = {"step": host[-1][0], "split": "train"}
    line.update({k: float(np.mean([m[k] for _, m in host])) for k in names})
    write(line)
    if log is not None:
      log(_log_line(description, line, num_steps, start, started))
    if "loss" in line:
      bar.set_postfix(loss=f"{line['loss']:.4f}")
    elif any(k.endswith("loss") for k in line):
      k = next(k for k in line if k.endswith("loss"))
      bar.set_postfix({k: f"{line[k]:.4f}"})

  def evaluate(step: int):
    if eval_fn is None:
      return
    values = {k: float(v) for k, v in eval_fn(state).items()}
    write({"step": step, "split": "eval", **values})

  def save(step: int):
    manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(iterator.get_state()),
        config=ocp.args.JsonSave(json.loads(json.dumps(config, default=str)))))

  started = time.perf_counter()
  sigint_at = int(os.environ.get(SIGINT_AT_STEP_ENV) or 0)

  def interrupted(step: int):
    flush()
    if manager.latest_step() != step:
      save(step)
    manager.wait_until_finished()
    return Interrupted(f"{description}: interrupted ({stop.requested}) at step {step} of "
                       f"{num_steps}; checkpoint saved in {workdir / 'checkpoints'}")

  try:
    if stop is not None and stop.requested and start < num_steps:
      raise interrupted(start)
    for step in range(start, num_steps):
      try:
        batch = next(iterator)
      except StopIteration:
        raise ValueError(f"the loader ran out after {step} steps of {num_steps}; "
                         f"build it with num_epochs=None or more epochs") from None
      key = jax.random.fold_in(root_key, step)
      state, metrics = step_fn(state, _device_batch(batch), key)
      done = step + 1
      pending.append((done, metrics))
      bar.update(1)
      if done % log_every == 0 or done == num_steps:
        flush()
      if eval_every and done % eval_every == 0 and done != num_steps:
        flush()
        evaluate(done)
      if checkpoint_every and done % checkpoint_every == 0 and done != num_steps:
        flush()
        save(done)
      if sigint_at and done == sigint_at:
        import signal  # pylint: disable=g-import-not-at-top
        os.kill(os.getpid(), signal.SIGINT)
      if stop is not None and stop.requested and done != num_steps:
        raise interrupted(done)
    flush()
    if start < num_steps:
      evaluate(num_steps)
    if manager.latest_step() != num_steps:
      save(num_steps)
    manager.wait_until_finished()
  finally:
    bar.close()
    manager.close()
    close = getattr(iterator, "close", None)
    if close is not None:
      close()
  elapsed = time.perf_counter() - started
  (workdir / "timing.json").write_text(json.dumps(
      {"steps_run": num_steps - start, "wall_seconds": elapsed,
       "steps_per_second": (num_steps - start) / elapsed if elapsed > 0 else math.nan}))
  return state, written


def _log_line(description: str, line: dict, num_steps: int, start: int, started: float) -> str:
  """"fold 0 stage1: step 50/750 loss 0.6931 q_pos 0.49 | 4.1 steps/s, ETA 0:02:51"."""
  step = line["step"]
  elapsed = time.perf_counter() - started
  rate = (step - start) / elapsed if elapsed > 0 else math.nan
  eta = (num_steps - step) / rate if rate > 0 else math.nan
  eta_s = "?" if not math.isfinite(eta) else time.strftime("%H:%M:%S", time.gmtime(eta))
  shown = " ".join(f"{k} {v:.4g}" for k, v in line.items() if k not in ("step", "split"))
  return f"{description}: step {step}/{num_steps} {shown} | {rate:.2f} steps/s, ETA {eta_s}"


class StopSignal:
  """Turns SIGINT / SIGTERM into a request to stop at the next step boundary.

  Used as a context manager around a run (main thread only; elsewhere it
  installs nothing). The first signal sets :attr:`requested` (the signal's
  name) and prints what will happen; the loop then checkpoints and raises
  :class:`~defects_jax.errors.Interrupted`. A second SIGINT aborts at once
  (``KeyboardInterrupt``), without a checkpoint.
  """

  def __init__(self, *, announce: Callable[[str], None] | None = None):
    self.requested: str | None = None
    self._announce = announce
    self._old: dict = {}

  def _handle(self, signum, frame):
    import signal  # pylint: disable=g-import-not-at-top
    del frame
    name = signal.Signals(signum).name
    if self.requested is not None and signum == signal.SIGINT:
      raise KeyboardInterrupt
    self.requested = name
    if self._announce is not None:
      self._announce(f"{name}: stopping at the next step boundary and saving a checkpoint "
                     f"(Ctrl-C again to abort without one)")

  def __enter__(self) -> "StopSignal":
    import signal  # pylint: disable=g-import-not-at-top
    import threading  # pylint: disable=g-import-not-at-top
    if threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGINT, signal.SIGTERM):
        self._old[sig] = signal.signal(sig, self._handle)
    return self

  def __exit__(self, *exc) -> None:
    import signal  # pylint: disable=g-import-not-at-top
    for sig, old in self._old.items():
      signal.signal(sig, old)
    self._old.clear()
