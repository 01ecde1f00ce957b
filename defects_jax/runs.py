"""The experiment skeleton every driver runs on: run folders, keys and loader
seeds, cells, results, status, logs, standard report facts and banners,
resume, evaluation and the run listing.

A driver (``experiments/<name>.py``, installed as
``defects_jax.experiments.<name>``; the command line finds it in the registry
and hands it to :func:`execute`, this module never imports drivers) provides::

  NAME                      the experiment's name
  Config                    a frozen dataclass subclassing config.Base
  PRESETS                   {preset name: Config}, from config.presets(...)
  run(cfg, run: Run)        trains every cell through run.train(...), records
                            results with run.add_result(...), ends with
                            run.write_report(...)
  evaluate(run_dir, cfg)    restores each cell's latest checkpoint and
                            evaluates it on the run's test split

and :func:`execute` does the rest: validation before any folder exists, the
device check, the run folder and its ``config.json``, signal handling
(SIGINT / SIGTERM save a checkpoint and stop; ``defects-jax resume RUN_DIR``
continues), ``status.json`` (running / finished / interrupted at step N /
failed), the removal of a folder whose run failed before training started,
and plain log lines when stderr is not a terminal.

A run folder::

  config.json      {"experiment": NAME, **resolved config}
  status.json      {"status", "cell", "step", "of", "message", "updated", "headline"}
  log.txt          the plain log lines (cell boundaries, metrics, errors)
  results.json     one row per finished cell (run.add_result)
  <cell>/          metrics.jsonl, checkpoints/ (train.train's workdir)
  report.json, report.md, figures/
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import shutil
import sys
import time
import zlib
from pathlib import Path
from typing import Any, Callable

from defects_jax import config as config_lib
from defects_jax.errors import ConfigError
from defects_jax.errors import DeviceError
from defects_jax.errors import Interrupted
from defects_jax.errors import RunFolderError

STATUS_FILE = "status.json"
CONFIG_FILE = "config.json"
RESULTS_FILE = "results.json"
DATASET_NAMES = {"neu": "NEU-CLS", "kolektor": "KolektorSDD", "crackforest": "CrackForest",
                 "mvtec": "MVTec AD", "synthetic": "SYNTHETIC"}


def _now() -> str:
  return datetime.datetime.now().isoformat(timespec="seconds")


def new_run_dir(out_dir: str | os.PathLike, experiment: str) -> Path:
  """A fresh ``out_dir/<experiment>/<YYYYmmdd-HHMMSS>[-k]`` path (not created)."""
  stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
  run_dir = Path(out_dir) / experiment / stamp
  k = 1
  while run_dir.exists():
    run_dir = Path(out_dir) / experiment / f"{stamp}-{k}"
    k += 1
  return run_dir


def git_commit() -> str:
  """Short hash of the checkout this package runs from (``+dirty`` when it
  has uncommitted changes), ``$DEFECTS_JAX_COMMIT`` when set (an installed
  wheel has no git checkout: say which commit it was built from), or
  "unknown"."""
  import subprocess  # pylint: disable=g-import-not-at-top
  if os.environ.get("DEFECTS_JAX_COMMIT"):
    return os.environ["DEFECTS_JAX_COMMIT"]
  here = Path(__file__).parent
  try:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, cwd=here, timeout=10)
    commit = out.stdout.strip()
    if not commit:
      return "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, cwd=here, timeout=10).stdout.strip()
    return commit + ("+dirty" if dirty else "")
  except (OSError, subprocess.SubprocessError):
    return "unknown"


def device_description() -> str:
  """"gpu (NVIDIA H200)", "cpu (cpu)": the JAX backend and its first device."""
  import jax  # pylint: disable=g-import-not-at-top
  d = jax.devices()[0]
  count = f" x{jax.device_count()}" if jax.device_count() > 1 else ""
  return f"{d.platform} ({d.device_kind}){count}"


def read_json(path: Path, default=None):
  try:
    return json.loads(path.read_text())
  except FileNotFoundError:
    return default
  except json.JSONDecodeError as e:
    raise RunFolderError(f"{path}: not valid JSON ({e})") from e


def read_run_config(run_dir: str | os.PathLike) -> tuple[str, dict]:
  """(experiment name, saved config dict) of a run folder.

  Raises:
    RunFolderError: no such folder, or no ``config.json`` in it.
  """
  run_dir = Path(run_dir)
  if not run_dir.is_dir():
    raise RunFolderError(f"{run_dir}: no such folder")
  raw = read_json(run_dir / CONFIG_FILE)
  if raw is None or "experiment" not in raw:
    raise RunFolderError(f"{run_dir}: not a run folder (no {CONFIG_FILE} naming an experiment)",
                         hint="a run folder is OUT/<experiment>/<timestamp>/; "
                              "`defects-jax runs OUT` lists them")
  return raw["experiment"], raw


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------


class Run:
  """One run of an experiment in its folder: what a driver's ``run`` gets.

  Attributes:
    name: the experiment's name.
    cfg: the resolved, validated config.
    dir: the run folder.
    results: the rows recorded with :meth:`add_result` (``results.json``).
    timings: seconds per trained cell.
    banners: extra report banners added by the driver (data problems...).
    skipped: unreadable data files left out (``on_error="skip"``).
  """

  def __init__(self, name: str, cfg, run_dir: Path, *, paper_config=None,
               progress: bool = True, stop=None):
    import jax  # pylint: disable=g-import-not-at-top
    self.name, self.cfg, self.dir = name, cfg, Path(run_dir)
    self.paper_config = paper_config
    self.root_key = jax.random.key(cfg.seed)
    self.results: list[dict] = []
    self.timings: dict[str, float] = {}
    self.banners: list[str] = []
    self.skipped: list[tuple[str, str]] = []
    self.training_started = False
    self.started = time.perf_counter()
    self._bar = progress and sys.stderr.isatty()
    self.stop = stop

  # Keys and seeds -----------------------------------------------------------

  def key(self, *path: int | str):
    """The root key folded with each element of ``path`` in turn (strings by
    their CRC32): ``run.key("cell", v, n)``. Distinct paths give independent
    keys; the same path always the same key."""
    import jax  # pylint: disable=g-import-not-at-top
    key = self.root_key
    for p in path:
      key = jax.random.fold_in(key, p if isinstance(p, int) else zlib.crc32(p.encode()))
    return key

  def loader_seed(self, *path: int | str) -> int:
    """A grain seed in [0, 2**31) drawn from ``key("loader", *path)``: distinct
    cells get independent shuffles (no arithmetic on indices that can
    collide)."""
    import jax  # pylint: disable=g-import-not-at-top
    import numpy as np  # pylint: disable=g-import-not-at-top
    bits = jax.random.bits(self.key("loader", *path), dtype=np.uint32)
    return int(bits) >> 1

  # Logging and status -------------------------------------------------------

  def log(self, message: str) -> None:
    """A plain line on stderr and in ``log.txt``."""
    line = f"[{time.strftime('%H:%M:%S')}] {message}"
    print(line, file=sys.stderr, flush=True)
    if self.dir.is_dir():
      with (self.dir / "log.txt").open("a") as f:
        f.write(line + "\n")

  def set_status(self, status: str, **fields) -> None:
    current = read_json(self.dir / STATUS_FILE, {}) if self.dir.is_dir() else {}
    current.update(fields, status=status, updated=_now())
    if self.dir.is_dir():
      (self.dir / STATUS_FILE).write_text(json.dumps(current, indent=1, default=str))

  # Cells --------------------------------------------------------------------

  def train(self, cell: str, *, state, step: Callable, loader, num_steps: int, key,
            description: str | None = None, checkpoint_every: int | None = None,
            eval_fn: Callable | None = None, eval_every: int = 0, config: dict | None = None):
    """Trains one cell with :func:`defects_jax.train.train` in ``dir/cell``
    (resuming from its checkpoint when there is one), logging the cell's
    start and end. Returns ``(state, metric lines written)``."""
    from defects_jax import train as train_lib  # pylint: disable=g-import-not-at-top
    if self.stop is not None and self.stop.requested:
      raise Interrupted(f"interrupted ({self.stop.requested}) before cell {cell}")
    self.training_started = True
    description = description or cell
    workdir = self.dir / cell
    resumed = (workdir / "checkpoints").is_dir() and any((workdir / "checkpoints").iterdir())
    self.set_status("running", cell=cell, step=None, of=num_steps)
    self.log(f"{description}: {'resuming' if resumed else 'start'} ({num_steps} steps)")
    t0 = time.perf_counter()
    try:
      state, lines = train_lib.train(
          state=state, train_step=step, loader=loader, root_key=key, workdir=workdir,
          num_steps=num_steps, log_every=self.cfg.log_every,
          checkpoint_every=(self.cfg.checkpoint_every if checkpoint_every is None
                            else checkpoint_every),
          eval_fn=eval_fn, eval_every=eval_every,
          progress=self._bar, log=None if self._bar else self.log, stop=self.stop,
          description=description,
          config={"experiment": self.name, "cell": cell, **(config or {}),
                  **config_lib.to_dict(self.cfg)})
    except Interrupted:
      self.set_status("interrupted", cell=cell, step=_last_step(workdir), of=num_steps)
      raise
    seconds = time.perf_counter() - t0
    self.timings[cell] = seconds
    last = next((l for l in reversed(lines) if l.get("split") == "train"), None)
    shown = " ".join(f"{k} {v:.4g}" for k, v in (last or {}).items()
                     if k not in ("step", "split"))
    self.log(f"{description}: done in {seconds:.1f} s{': ' + shown if shown else ''}")
    return state, lines

  def add_result(self, row: dict) -> None:
    """Records a finished cell's row (saved to ``results.json`` at once)."""
    self.results.append(row)
    (self.dir / RESULTS_FILE).write_text(json.dumps(self.results, indent=1, default=_jsonable))

  def check_source(self, source) -> None:
    """Records a file source's skipped files and its differences from the
    paper protocol's counts as report banners (synthetic sources: nothing)."""
    skipped = list(getattr(source, "skipped", []))
    if skipped:
      self.skipped += skipped
      self.banners.append(f"{len(skipped)} unreadable data file(s) left out (on_error=skip): "
                          + "; ".join(f"{i}" for i, _ in skipped[:10])
                          + (" ..." if len(skipped) > 10 else "") + " (Notes list why).")
    differences = getattr(source, "protocol_differences", lambda: [])()
    if differences:
      self.banners.append(f"This copy of {DATASET_NAMES.get(self.cfg.dataset, 'the data')} "
                          f"differs from what the paper's protocol assumes ("
                          + "; ".join(differences) + "): results are not comparable to the "
                          "paper's.")

  # Report -------------------------------------------------------------------

  def wall_seconds(self) -> float:
    return time.perf_counter() - self.started

  def standard_facts(self) -> dict:
    import jax  # pylint: disable=g-import-not-at-top
    return {"experiment": self.name, "preset": self.cfg.preset,
            "dataset": DATASET_NAMES.get(self.cfg.dataset, self.cfg.dataset),
            "device": device_description(), "jax": jax.__version__, "commit": git_commit(),
            "seed": self.cfg.seed}

  def standard_banners(self) -> list[str]:
    out = []
    if self.cfg.synthetic:
      out.append("SYNTHETIC data (defects_jax.data.SyntheticDefects, generated; not the "
                 "paper's dataset): these numbers show the pipeline works, nothing about the "
                 "paper's results.")
    if self.paper_config is not None:
      differs = config_lib.differs_from_paper(self.cfg, self.paper_config)
      if differs:
        out.append("Differs from the paper's setting: " + "; ".join(differs) + ".")
    return out

  def write_report(self, *, title: str, tables: dict, figures: dict | None = None,
                   notes: list[str] | None = None, facts: dict | None = None,
                   banners: list[str] | None = None, headline: str = "") -> Path:
    """Writes ``report.json`` (standard facts and banners first, then the
    driver's) and renders ``report.md``; records ``headline`` (one short
    line, e.g. "AP 0.83") in the status for ``defects-jax runs``."""
    from defects_jax import report  # pylint: disable=g-import-not-at-top
    wall = self.wall_seconds()
    spec = {
        "title": title,
        "banners": self.standard_banners() + list(banners or []) + self.banners,
        "facts": {**self.standard_facts(), **(facts or {}),
                  "wall time (incl. compile and evaluation)": f"{wall:.0f} s"},
        "tables": tables,
        "figures": figures or {},
        "notes": list(notes or []) + [f"Unreadable file left out: {i}: {why}"
                                      for i, why in self.skipped],
        "headline": headline,
    }
    (self.dir / "report.json").write_text(json.dumps(spec, indent=1, default=_jsonable))
    self.set_status("running", headline=headline)
    return report.write_report(self.dir)


def _jsonable(v):
  import numpy as np  # pylint: disable=g-import-not-at-top
  if isinstance(v, np.generic):
    return v.item()
  if isinstance(v, np.ndarray):
    return v.tolist()
  return str(v)


def _last_step(workdir: Path) -> int | None:
  ckpt = workdir / "checkpoints"
  steps = [int(p.name) for p in ckpt.iterdir() if p.name.isdigit()] if ckpt.is_dir() else []
  return max(steps) if steps else None


# --------------------------------------------------------------------------
# Execute, resume, evaluate
# --------------------------------------------------------------------------


def check_device(name: str, presets_info: dict | None, cfg, *, allow_cpu: bool) -> None:
  """Refuses a preset meant for a GPU on the CPU backend (unless ``allow_cpu``).

  Args:
    name: the experiment.
    presets_info: {preset: :class:`~defects_jax.config.PresetInfo`} (the
      registry's), or None to skip the check.

  Raises:
    DeviceError: naming the CPU presets and ``--allow-cpu``.
  """
  info = (presets_info or {}).get(cfg.preset)
  if info is None or info.device != "gpu" or allow_cpu:
    return
  import jax  # pylint: disable=g-import-not-at-top
  if jax.default_backend() != "cpu":
    return
  cpu = [n for n, p in presets_info.items() if p.device == "cpu"]
  raise DeviceError(
      f"preset {cfg.preset!r} of {name} is meant for a GPU ({info.about}); this machine's "
      f"JAX backend is the CPU",
      hint=f"use a CPU preset ({', '.join(cpu)}), or run it here anyway with --allow-cpu")


def execute(driver, cfg, *, presets_info: dict | None = None,
            out_dir: str | os.PathLike = "runs", run_dir: str | os.PathLike | None = None,
            progress: bool = True, allow_cpu: bool = False) -> Path:
  """Runs an experiment driver with ``cfg``; returns the run folder.

  Args:
    driver: the experiment's driver module (``NAME``, ``PRESETS``, ``run``).
    cfg: its config.
    presets_info: the registry's preset descriptions, for the device check.
    out_dir: parent of new run folders.
    run_dir: an existing run folder to resume; otherwise a new folder
      ``out_dir/<name>/<timestamp>/`` is made, after the config is validated
      and the device checked, and removed again if the run fails before its
      first cell starts training.
    progress: a progress bar on a terminal (plain log lines otherwise).
    allow_cpu: run a GPU preset on the CPU backend.

  Raises:
    ConfigError, DeviceError, DatasetError, NonFiniteError, Interrupted, ...:
      the driver's errors, after ``status.json`` records them.
  """
  from defects_jax import train  # pylint: disable=g-import-not-at-top
  name = driver.NAME
  cfg.validate()
  check_device(name, presets_info, cfg, allow_cpu=allow_cpu)
  fresh = run_dir is None
  run_dir = new_run_dir(out_dir, name) if fresh else Path(run_dir)
  paper = driver.PRESETS.get("paper")
  stop = train.StopSignal(announce=lambda m: print(m, file=sys.stderr, flush=True))
  run = Run(name, cfg, run_dir, paper_config=paper, progress=progress, stop=stop)
  run_dir.mkdir(parents=True, exist_ok=True)
  (run_dir / CONFIG_FILE).write_text(json.dumps({"experiment": name,
                                                 **config_lib.to_dict(cfg)}, indent=1))
  run.set_status("running", started=_now(), message="")
  run.log(f"{name} ({cfg.preset}): {'resuming ' if not fresh else ''}run folder {run_dir}")
  with stop:
    try:
      driver.run(cfg, run)
    except BaseException as e:
      if fresh and not run.training_started:
        shutil.rmtree(run_dir, ignore_errors=True)
        kept = None
      else:
        kept = run_dir
        if isinstance(e, (Interrupted, KeyboardInterrupt)):
          run.set_status("interrupted", message=str(e) or type(e).__name__)
        else:
          run.set_status("failed", message=f"{type(e).__name__}: {e}")
          run.log(f"failed: {type(e).__name__}: {e}")
      try:
        e.run_dir = kept  # for the command line's message
      except AttributeError:
        pass
      raise
  run.set_status("finished", message="", wall_seconds=round(run.wall_seconds(), 1))
  if (run_dir / "report.json").is_file():
    from defects_jax import report  # pylint: disable=g-import-not-at-top
    report.write_report(run_dir)  # without the UNFINISHED banner it got while running
  run.log(f"{name}: finished in {run.wall_seconds():.0f} s; report {run_dir / 'report.md'}")
  return run_dir


def load_config(driver, run_dir: str | os.PathLike):
  """The config a run folder was started with (``config.json``), as the
  driver's ``Config``.

  Raises:
    RunFolderError: not a run folder, or a run of another experiment.
  """
  name, raw = read_run_config(run_dir)
  if name != driver.NAME:
    raise RunFolderError(f"{run_dir}: a {name} run, not {driver.NAME}")
  return config_lib.from_dict(driver.Config, raw)


def resume(driver, run_dir: str | os.PathLike, *, presets_info: dict | None = None,
           progress: bool = True, allow_cpu: bool = False) -> Path:
  """Continues a run from its latest checkpoints with its saved config (a
  finished run is left as it is: :class:`RunFolderError`)."""
  cfg = load_config(driver, run_dir)
  status = read_json(Path(run_dir) / STATUS_FILE, {})
  if status.get("status") == "finished":
    raise RunFolderError(f"{run_dir}: this run finished; nothing to resume",
                         hint=f"`defects-jax report {run_dir}` rebuilds its report")
  return execute(driver, cfg, presets_info=presets_info, run_dir=run_dir, progress=progress,
                 allow_cpu=allow_cpu)


def evaluate(driver, run_dir: str | os.PathLike) -> dict:
  """Restores every cell's latest checkpoint of a run (finished or not) and
  evaluates it on the run's test split: ``{cell: {"step", "of", metrics}}``."""
  return driver.evaluate(Path(run_dir), load_config(driver, run_dir))


def restore_latest(workdir: str | os.PathLike, state):
  """(state restored from ``workdir/checkpoints``' latest step, that step), or
  (None, None) when the cell has no checkpoint. ``state`` is the restore
  target (same structure, e.g. a freshly initialised state)."""
  import jax  # pylint: disable=g-import-not-at-top
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  ckpt = Path(workdir) / "checkpoints"
  if not ckpt.is_dir():
    return None, None
  with ocp.CheckpointManager(ckpt.absolute(), item_names=("state", "data", "config")) as mngr:
    step = mngr.latest_step()
    if step is None:
      return None, None
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, state)
    restored = mngr.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract)))
  return restored.state, int(step)


# --------------------------------------------------------------------------
# Listing
# --------------------------------------------------------------------------


def describe_status(run_dir: Path) -> dict:
  """{"run", "experiment", "preset", "status", "headline"} of a run folder."""
  name, raw = read_run_config(run_dir)
  if "cell" in raw:
    raise RunFolderError(f"{run_dir}: a cell of a run, not a run folder")
  st = read_json(run_dir / STATUS_FILE, {})
  status = st.get("status") or ("finished (no status.json)" if (run_dir / "report.json")
                                .is_file() else "unknown (no status.json)")
  if status in ("interrupted", "running") and st.get("cell"):
    step = st.get("step")
    status += f" in {st['cell']}" + (f" at step {step}/{st.get('of')}" if step is not None
                                     else "")
  if status.startswith("running"):
    status += " (or killed)"
  if st.get("status") == "failed":
    status += f": {st.get('message', '')[:80]}"
  return {"run": str(run_dir), "experiment": name, "preset": raw.get("preset", "?"),
          "status": status, "headline": st.get("headline", "")}


def list_runs(out_dir: str | os.PathLike = "runs") -> list[dict]:
  """:func:`describe_status` of every run folder under ``out_dir`` (any depth
  up to ``out_dir/<experiment>/<run>``), oldest first."""
  out_dir = Path(out_dir)
  if not out_dir.is_dir():
    raise RunFolderError(f"{out_dir}: no such folder")
  found = sorted({p.parent for p in out_dir.glob(CONFIG_FILE)} |
                 {p.parent for p in out_dir.glob(f"*/{CONFIG_FILE}")} |
                 {p.parent for p in out_dir.glob(f"*/*/{CONFIG_FILE}")})
  rows = []
  for d in found:
    try:
      rows.append(describe_status(d))
    except RunFolderError:
      continue  # a cell's config.json inside a run, or a foreign folder
  return rows
