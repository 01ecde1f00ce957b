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
    return f"{v:.4f}"
  return str(v)


def _table(rows: list[dict]) -> str:
  if not rows:
    return ""
  cols = list(rows[0])
  out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
  out += ["| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
  return "\n".join(out)


def write_report(run_dir: str | os.PathLike) -> Path:
  """Renders ``run_dir/report.json`` to ``run_dir/report.md`` and returns its path."""
  run_dir = Path(run_dir)
  spec_path = run_dir / "report.json"
  if not spec_path.is_file():
    raise FileNotFoundError(f"{spec_path}: no report.json; is {run_dir} a run folder?")
  spec = json.loads(spec_path.read_text())
  lines = [f"# {spec['title']}", ""]
  for note in spec.get("banners", []):
    lines += [f"> **{note}**", ""]
  facts = spec.get("facts", {})
  if facts:
    lines += ["| | |", "|---|---|"] + [f"| {k} | {_fmt(v)} |" for k, v in facts.items()] + [""]
  for name, rows in spec.get("tables", {}).items():
    lines += [f"## {name}", "", _table(rows), ""]
  for name, rel in spec.get("figures", {}).items():
    lines += [f"## {name}", "", f"![{name}]({rel})", ""]
  notes = spec.get("notes", [])
  if notes:
    lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
  out = run_dir / "report.md"
  out.write_text("\n".join(lines))
  return out


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
