"""Experiment configs: frozen dataclasses with named presets and command-line
overrides (``--set field=value``), big_vision style."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Sequence


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
    return tuple(elem(t) for t in text.split(",") if t.strip())
  if default is None:
    for conv in (int, float):
      try:
        return conv(text)
      except ValueError:
        pass
    return None if text.lower() == "none" else text
  return type(default)(text)


def override(config, assignments: Sequence[str]):
  """Returns ``config`` with ``field=value`` assignments applied.

  Values are parsed by the field's current type: int, float, str, bool
  (true/false/1/0), tuples as comma-separated lists.

  Raises:
    ValueError: malformed assignment, unknown field, or unparsable value.
  """
  fields = {f.name: f for f in dataclasses.fields(config)}
  changes = {}
  for a in assignments:
    if "=" not in a:
      raise ValueError(f"override {a!r}: expected field=value")
    name, text = a.split("=", 1)
    name = name.strip()
    if name not in fields:
      raise ValueError(f"override {a!r}: unknown field {name!r}; fields: {sorted(fields)}")
    default = getattr(config, name)
    try:
      changes[name] = _parse(text.strip(), fields[name].type, default)
    except ValueError as e:
      raise ValueError(f"override {a!r}: {e}") from e
  return dataclasses.replace(config, **changes)


def to_dict(config) -> dict:
  """JSON-friendly dict of a config dataclass."""
  return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def select_preset(presets: dict, name: str):
  """``presets[name]``, or a ValueError listing the presets."""
  if name not in presets:
    raise ValueError(f"unknown preset {name!r}; presets: {sorted(presets)}")
  return presets[name]
