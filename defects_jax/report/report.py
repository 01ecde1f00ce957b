"""``report.md`` for a run folder: header facts, final metrics, figures.

An experiment writes ``report.json`` (title, facts, metric tables, figure
paths, notes) next to ``metrics.jsonl``; :func:`write_report` renders it to
markdown, so ``defects-jax report RUN_DIR`` can rebuild the file at any time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def _fmt(v: Any) -> str:
  if isinstance(v, float):
    # Small magnitudes in scientific notation (0.0000 would hide e.g. a
    # collapsed heat map's mean of 2e-06).
    return f"{v:.2e}" if 0 < abs(v) < 1e-3 else f"{v:.4f}"
  return str(v)


def _table(rows: list[dict]) -> str:
  if not rows:
    return ""
  cols = list(rows[0])
  out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
  out += ["| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
  return "\n".join(out)


def _load_spec(run_dir: Path) -> dict:
  spec_path = run_dir / "report.json"
  if not spec_path.is_file():
    raise FileNotFoundError(f"{spec_path}: no report.json; is {run_dir} a run folder?")
  return json.loads(spec_path.read_text())


def _render(spec: dict, *, figures: bool, command: str | None = None) -> str:
  lines = [f"# {spec['title']}", ""]
  if command:
    lines += ["Command that produced this file:", "", f"```\n{command}\n```", ""]
  for note in spec.get("banners", []):
    lines += [f"> **{note}**", ""]
  facts = spec.get("facts", {})
  if facts:
    lines += ["| | |", "|---|---|"] + [f"| {k} | {_fmt(v)} |" for k, v in facts.items()] + [""]
  for name, rows in spec.get("tables", {}).items():
    lines += [f"## {name}", "", _table(rows), ""]
  if figures:
    for name, rel in spec.get("figures", {}).items():
      lines += [f"## {name}", "", f"![{name}]({rel})", ""]
  notes = spec.get("notes", [])
  if notes:
    lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
  return "\n".join(lines)


def write_report(run_dir: str | os.PathLike) -> Path:
  """Renders ``run_dir/report.json`` to ``run_dir/report.md`` and returns its path."""
  run_dir = Path(run_dir)
  out = run_dir / "report.md"
  out.write_text(_render(_load_spec(run_dir), figures=True))
  return out


def write_results(run_dir: str | os.PathLike, path: str | os.PathLike, *,
                  command: str | None = None) -> Path:
  """Renders a run's report (tables, facts, notes; no figures, which stay in the
  run folder) to a results file meant to be committed, e.g.
  ``experiments/results/<experiment>.md``. Generated from the run, never typed."""
  run_dir = Path(run_dir)
  spec = _load_spec(run_dir)
  if command is None:
    cfg = json.loads((run_dir / "config.json").read_text())
    sets = " ".join(f"--set {k}={','.join(map(str, v)) if isinstance(v, list) else v}"
                    for k, v in cfg.items() if k not in ("experiment", "preset"))
    command = f"defects-jax {cfg.get('experiment')} --preset {cfg.get('preset')} {sets}".strip()
  out = Path(path)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(_render(spec, figures=False, command=command))
  return out


def compare_runs(run_dirs, *, table: str, row: int = 0, columns=None, labels=None,
                 facts=("commit", "wall time (all folds, incl. compile)")) -> str:
  """A markdown table with one row per run: what its config changes against
  the first run's, the given ``facts``, and row ``row`` of its table ``table``
  (``columns`` of it, default all), labelled by ``labels`` (default the
  folder names). Generated from the runs' report.json and
  config.json, so results files can quote several runs without retyping.

  Raises ValueError naming the run folder when a table, row or column is missing."""
  run_dirs = [Path(d) for d in run_dirs]
  if labels is not None and len(labels) != len(run_dirs):
    raise ValueError(f"{len(labels)} labels for {len(run_dirs)} run folders")
  rows, ref = [], None
  for i, d in enumerate(run_dirs):
    spec = _load_spec(d)
    cfg_path = d / "config.json"
    cfg = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
    tables = spec.get("tables", {})
    if table not in tables:
      raise ValueError(f"{d}: report.json has no table {table!r}; it has {sorted(tables)}")
    try:
      source = tables[table][row]
    except IndexError:
      raise ValueError(f"{d}: table {table!r} has {len(tables[table])} rows, no row {row}"
                       ) from None
    if ref is None:
      ref = cfg
      changed = "(reference)"
    else:
      diff = [f"{k}={v}" for k, v in cfg.items() if ref.get(k) != v]
      diff += [f"{k} unset" for k in ref if k not in cfg]
      changed = ", ".join(diff) or "(same config)"
    out = {"run": labels[i] if labels else d.name, "config vs first run": changed}
    out.update({f: spec.get("facts", {}).get(f, "") for f in facts})
    for c in (columns or list(source)):
      if c not in source:
        raise ValueError(f"{d}: table {table!r} has no column {c!r}; it has {list(source)}")
      out[c] = source[c]
    rows.append(out)
  return _table(rows)


def new_run_dir(out_dir: str | os.PathLike, experiment: str) -> Path:
  """A fresh ``out_dir/<experiment>/<YYYYmmdd-HHMMSS>[-k]`` path (not created)."""
  import datetime  # pylint: disable=g-import-not-at-top
  stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
  run_dir = Path(out_dir) / experiment / stamp
  k = 1
  while run_dir.exists():
    run_dir = Path(out_dir) / experiment / f"{stamp}-{k}"
    k += 1
  return run_dir


def git_commit() -> str:
  """Short hash of the checkout this package runs from, or "unknown"."""
  import subprocess  # pylint: disable=g-import-not-at-top
  try:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         cwd=Path(__file__).parent, timeout=10)
    return out.stdout.strip() or "unknown"
  except (OSError, subprocess.SubprocessError):
    return "unknown"
