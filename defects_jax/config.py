"""Experiment configs: frozen dataclasses, named presets, overrides, and the
fields every experiment has (big_vision style).

* :class:`Base` declares the fields every experiment has (preset, dataset,
  seed, logging, checkpointing, evaluation batch, what to do with unreadable
  files) and ``validate()``; an experiment's ``Config`` subclasses it (and,
  usually, its system's hyperparameter dataclass).
* :func:`field` attaches metadata to a field: ``paper=`` names the paper
  section a value comes from, which makes the field part of the paper's
  setting: :func:`differs_from_paper` lists every such field where a config
  differs from the ``paper`` preset, for the report's banner.
* :func:`presets` builds a preset table whose configs carry their own names
  (``cfg.preset``); :class:`PresetInfo` is what a user needs to choose one
  (device, expected wall time, what it reproduces), kept in the experiment
  registry so that ``--help`` needs no JAX.
* :func:`override` applies ``--set field=value``; :func:`from_dict` rebuilds a
  config from a run folder's ``config.json``.

This module imports no JAX: the command line reads configs without it.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Mapping, Sequence

from defects_jax.errors import ConfigError

__all__ = ["Base", "ConfigError", "PresetInfo", "check", "describe", "differs_from_paper", "field",
           "from_dict", "get_preset", "override", "presets", "select_preset", "to_dict"]


def field(default: Any, *, paper: str | None = None, doc: str = "") -> Any:
  """A dataclass field with metadata.

  Args:
    default: the default value (immutable: use tuples, not lists).
    paper: where the paper sets this value (e.g. "section 4.1: 10,000
      iterations"). Marks the field as part of the paper's setting, so a
      config that differs from the ``paper`` preset here says so in its report.
    doc: one line shown by ``--print-config``.
  """
  meta = {}
  if paper is not None:
    meta["paper"] = paper
  if doc:
    meta["doc"] = doc
  return dataclasses.field(default=default, metadata=meta)


def check(ok: bool, name: str, message: str) -> None:
  """Raises :class:`ConfigError` "field ``name``: ``message``" unless ``ok``."""
  if not ok:
    raise ConfigError(f"config field {name!r}: {message}",
                      hint=f"fix it with --set {name}=...; --print-config shows every field")


@dataclasses.dataclass(frozen=True)
class Base:
  """The fields every experiment has. Subclasses add theirs and extend
  :meth:`validate` (calling ``super().validate()``)."""

  preset: str = field("paper", doc="the preset this config came from (set by get_preset)")
  dataset: str = field("synthetic", doc="which data: 'synthetic' or the real dataset's name")
  seed: int = field(0, doc="root PRNG seed: every key and loader seed derives from it")
  log_every: int = field(50, doc="steps between metric lines (and plain log lines off a TTY)")
  checkpoint_every: int = field(0, doc="steps between checkpoints (0: at the end of each cell)")
  eval_batch: int = field(100, doc="images per evaluation batch")
  on_error: str = field("raise", doc="unreadable data files: 'raise', or 'skip' and list them "
                        "in the report")
  worker_count: int = field(0, doc="grain worker processes decoding training data (0: in the "
                            "main process; same batches either way)")

  # The dataset names this experiment accepts (subclasses override).
  DATASETS: typing.ClassVar[tuple[str, ...]] = ("synthetic",)

  def validate(self) -> None:
    """Raises :class:`ConfigError` naming the first invalid field."""
    check(self.dataset in self.DATASETS, "dataset",
          f"unknown dataset {self.dataset!r}; expected one of {list(self.DATASETS)}")
    check(self.seed >= 0, "seed", f"must be >= 0, got {self.seed}")
    check(self.log_every >= 1, "log_every", f"must be >= 1, got {self.log_every}")
    check(self.checkpoint_every >= 0, "checkpoint_every",
          f"must be >= 0, got {self.checkpoint_every}")
    check(self.eval_batch >= 1, "eval_batch", f"must be >= 1, got {self.eval_batch}")
    check(self.on_error in ("raise", "skip"), "on_error",
          f"must be 'raise' or 'skip', got {self.on_error!r}")
    check(self.worker_count >= 0, "worker_count", f"must be >= 0, got {self.worker_count}")

  @property
  def synthetic(self) -> bool:
    return self.dataset == "synthetic"


# --------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PresetInfo:
  """What a user needs to choose a preset (the experiment registry holds one
  per preset; the config itself is in the experiment module).

  Attributes:
    about: one line: what it runs or reproduces, and its expected wall time.
    device: "cpu" (runs on a CPU in the stated time) or "gpu" (meant for an
      accelerator; the command line refuses it on a CPU backend unless
      ``--allow-cpu``).
  """

  about: str
  device: str = "cpu"

  def __post_init__(self):
    if self.device not in ("cpu", "gpu"):
      raise ValueError(f"PresetInfo.device must be 'cpu' or 'gpu', got {self.device!r}")


def presets(**named) -> dict:
  """The preset table ``{name: config}``, each config stamped with its name
  (``cfg.preset``)."""
  return {name: dataclasses.replace(c, preset=name) for name, c in named.items()}


def get_preset(table: Mapping[str, Any], name: str):
  """``table[name]``, or a :class:`ConfigError` listing the presets."""
  if name not in table:
    raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(table)}",
                      hint="--help lists them with what each runs")
  return table[name]


select_preset = get_preset


# --------------------------------------------------------------------------
# Overrides, (de)serialisation, description
# --------------------------------------------------------------------------


def _parse(text: str, annotation: Any, default: Any) -> Any:
  kind = typing.get_origin(annotation) or annotation
  if isinstance(kind, str):  # postponed annotations
    kind = type(default)
  if kind is bool or isinstance(default, bool):
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
      return True
    if low in ("0", "false", "no", "off"):
      return False
    raise ValueError(f"expected a boolean, got {text!r}")
  if kind in (tuple, list) or isinstance(default, (tuple, list)):
    elem = type(default[0]) if default else str
    return tuple(elem(t.strip()) for t in text.split(",") if t.strip())
  if default is None:
    for conv in (int, float):
      try:
        return conv(text)
      except ValueError:
        pass
    return None if text.lower() == "none" else text
  if isinstance(default, float):
    return float(text)
  return type(default)(text)


def override(config, assignments: Sequence[str]):
  """Returns ``config`` with ``field=value`` assignments applied.

  Values are parsed by the field's current type: int, float, str, bool
  (true/false/1/0), tuples as comma-separated lists (an empty value is an
  empty tuple, which ``validate`` refuses where a field needs entries).

  Raises:
    ConfigError: malformed assignment, unknown field, or unparsable value.
  """
  fields = {f.name: f for f in dataclasses.fields(config)}
  changes = {}
  for a in assignments:
    if "=" not in a:
      raise ConfigError(f"override {a!r}: expected field=value", hint="e.g. --set seed=1")
    name, text = a.split("=", 1)
    name = name.strip()
    if name not in fields:
      raise ConfigError(f"override {a!r}: unknown field {name!r}; fields: "
                        f"{', '.join(sorted(fields))}",
                        hint="--print-config lists every field with its value; "
                             "--set field=value changes one")
    if name == "preset":
      raise ConfigError(f"override {a!r}: choose a preset with --preset, not --set")
    default = getattr(config, name)
    try:
      changes[name] = _parse(text.strip(), fields[name].type, default)
    except ValueError as e:
      raise ConfigError(f"override {a!r}: {e}",
                        hint=f"--set {name}=VALUE takes a {type(default).__name__}"
                             + (" (comma-separated)" if isinstance(default, tuple) else "")) from e
  return dataclasses.replace(config, **changes)


def to_dict(config) -> dict:
  """JSON-friendly dict of a config dataclass (tuples as lists)."""
  return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def from_dict(cls, raw: Mapping[str, Any]):
  """A ``cls`` config from :func:`to_dict`'s output (as saved in a run
  folder's ``config.json``; the ``experiment`` key is ignored).

  Raises:
    ConfigError: a key that is not a field of ``cls`` (a config saved by
      another version of the experiment).
  """
  names = {f.name for f in dataclasses.fields(cls)}
  raw = {k: v for k, v in raw.items() if k != "experiment"}
  unknown = sorted(set(raw) - names)
  if unknown:
    raise ConfigError(f"saved config has fields {unknown} that {cls.__module__}.{cls.__name__} "
                      f"does not know (written by another version?)")
  return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


def _show(v: Any) -> str:
  if isinstance(v, tuple):
    return ", ".join(map(str, v)) if v else "(empty)"
  if isinstance(v, str):
    return repr(v) if v == "" else v
  return str(v)


def differs_from_paper(config, paper_config) -> list[str]:
  """One line per field marked ``paper=`` whose value differs from
  ``paper_config`` (the experiment's ``paper`` preset), naming the paper's
  value and section: ``"steps 200 (paper: 10000; section 4.1: ...)"``."""
  out = []
  for f in dataclasses.fields(config):
    if "paper" not in f.metadata:
      continue
    ours, theirs = getattr(config, f.name), getattr(paper_config, f.name)
    if ours != theirs:
      out.append(f"{f.name} {_show(ours)} (paper: {_show(theirs)}; {f.metadata['paper']})")
  return out


def describe(config) -> str:
  """Every field of ``config`` with its value, one per line, and its doc /
  paper source as a comment (what ``--print-config`` prints)."""
  rows = []
  for f in dataclasses.fields(config):
    note = f.metadata.get("doc", "")
    if "paper" in f.metadata:
      note = (note + "; " if note else "") + f"paper: {f.metadata['paper']}"
    rows.append((f"{f.name} = {_show(getattr(config, f.name))}", note))
  width = max(len(r[0]) for r in rows)
  return "\n".join(f"{a:<{width}}  # {b}" if b else a for a, b in rows)
