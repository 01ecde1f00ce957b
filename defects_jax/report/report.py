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


# Column names that hold percentages (two decimals) or seconds (one decimal).
_PERCENT_MARKS = ("%", "accuracy (%)")
_SECONDS_MARKS = ("seconds", "wall", "(s)", "time")


def _fmt(v: Any, column: str = "") -> str:
  """A value as a table cell: percentages (a column name with "%") with two
  decimals, seconds with one, other floats with four (below 1e-3 in
  scientific notation, so a collapsed heat map's mean of 2e-06 does not read
  0.0000), booleans as yes/no, lists and dicts spelled out (no Python reprs)."""
  if isinstance(v, bool):
    return "yes" if v else "no"
  if isinstance(v, dict):
    return "; ".join(f"{k}: {_fmt(x)}" for k, x in v.items()) or "-"
  if isinstance(v, (list, tuple)):
    return ", ".join(_fmt(x) for x in v) or "-"
  if v is None:
    return "-"
  if isinstance(v, float):
    if v != v:
      return "n/a"
    low = column.lower()
    if any(m in low for m in _PERCENT_MARKS):
      return f"{v:.2f}"
    if any(m in low for m in _SECONDS_MARKS):
      return f"{v:.1f}"
    return f"{v:.2e}" if 0 < abs(v) < 1e-3 else f"{v:.4f}"
  return str(v)


def _table(rows: list[dict], name: str = "") -> str:
  """A markdown table; in a table whose name has "%" every float is a
  percentage (two decimals)."""
  if not rows:
    return ""
  cols = list(dict.fromkeys(c for r in rows for c in r))
  pct = "%" in name
  out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
  out += ["| " + " | ".join(_fmt(r.get(c, ""), f"{c} %" if pct else c) for c in cols) + " |"
          for r in rows]
  return "\n".join(out)


def confusion_table(cm, class_names) -> list[dict]:
  """A confusion matrix int[K, K] as table rows: one row per true class, one
  column per predicted class (full names), plus the row's recall in %."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  cm = np.asarray(cm)
  rows = []
  for i, name in enumerate(class_names):
    row = {"true \\ predicted": name}
    row.update({str(n): int(cm[i, j]) for j, n in enumerate(class_names)})
    total = int(cm[i].sum())
    row["recall %"] = round(100.0 * cm[i, i] / total, 2) if total else float("nan")
    rows.append(row)
  return rows


def _load_spec(run_dir: Path) -> dict:
  spec_path = run_dir / "report.json"
  if not spec_path.is_file():
    raise FileNotFoundError(f"{spec_path}: no report.json; is {run_dir} a run folder?")
  return json.loads(spec_path.read_text())


def _render(spec: dict, *, figures: bool, command: str | None = None,
            status: dict | None = None) -> str:
  lines = [f"# {spec['title']}", ""]
  if status and status.get("status") not in (None, "finished"):
    where = f" in {status['cell']}" if status.get("cell") else ""
    at = f" at step {status['step']} of {status.get('of')}" if status.get("step") else ""
    lines += [f"> **UNFINISHED: this run is {status['status']}{where}{at}"
              f"{': ' + status['message'] if status.get('message') else ''}. "
              f"Tables show the cells finished so far.**", ""]
  if command:
    lines += ["Command that produced this file:", "", f"```\n{command}\n```", ""]
  for note in spec.get("banners", []):
    lines += [f"> **{note}**", ""]
  facts = spec.get("facts", {})
  if facts:
    lines += ["| | |", "|---|---|"] + [f"| {k} | {_fmt(v, k)} |" for k, v in facts.items()] + [""]
  for name, rows in spec.get("tables", {}).items():
    lines += [f"## {name}", "", _table(rows, name), ""]
  if figures:
    for name, rel in spec.get("figures", {}).items():
      lines += [f"## {name}", "", f"![{name}]({rel})", ""]
  notes = spec.get("notes", [])
  if notes:
    lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
  return "\n".join(lines)


def _status(run_dir: Path) -> dict:
  path = run_dir / "status.json"
  return json.loads(path.read_text()) if path.is_file() else {}


def _partial_spec(run_dir: Path) -> dict:
  """What a run folder without report.json holds: its config, status, the
  last train / eval metrics of every cell, and results.json's rows."""
  cfg_path = run_dir / "config.json"
  if not cfg_path.is_file():
    raise FileNotFoundError(f"{run_dir / 'report.json'}: no report.json and no config.json; "
                            f"is {run_dir} a run folder?")
  cfg = json.loads(cfg_path.read_text())
  cells = []
  for m in sorted(run_dir.glob("**/metrics.jsonl")):
    lines = [json.loads(l) for l in m.read_text().splitlines() if l.strip()]
    train = [l for l in lines if l.get("split") == "train"]
    evals = [l for l in lines if l.get("split") == "eval"]
    row = {"cell": str(m.parent.relative_to(run_dir))}
    if train:
      row.update({f"train {k}": v for k, v in train[-1].items() if k != "split"})
    if evals:
      row.update({f"eval {k}": v for k, v in evals[-1].items() if k not in ("split", "step")})
    cells.append(row)
  tables = {"Last logged metrics per cell": cells}
  results_path = run_dir / "results.json"
  if results_path.is_file():
    results = json.loads(results_path.read_text())
    tables["Finished cells (results.json)"] = [
        {k: v for k, v in r.items() if not isinstance(v, (list, dict))} for r in results]
  return {"title": f"{cfg.get('experiment')} ({cfg.get('preset')}): partial report",
          "facts": {k: v for k, v in cfg.items() if k in ("experiment", "preset", "dataset",
                                                          "seed")},
          "tables": tables}


def write_report(run_dir: str | os.PathLike) -> Path:
  """Renders ``run_dir/report.json`` to ``run_dir/report.md`` and returns its
  path. A run that has not finished (``status.json``) gets an UNFINISHED
  banner; one without ``report.json`` yet (interrupted or failed before its
  end) gets a partial report from its metric files and results."""
  run_dir = Path(run_dir)
  out = run_dir / "report.md"
  status = _status(run_dir)
  spec = (_load_spec(run_dir) if (run_dir / "report.json").is_file() or not status
          else _partial_spec(run_dir))
  out.write_text(_render(spec, figures=True, status=status))
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
                 facts=("commit", "wall time")) -> str:
  """A markdown table with one row per run: what its config changes against
  the first run's, the given ``facts``, and row ``row`` of its table ``table``
  (``columns`` of it, default all), labelled by ``labels`` (default the
  folder names). A fact is looked up by its exact name, else as the first fact
  whose name starts with it ("wall time" finds "wall time (incl. ...)").
  Generated from the runs' report.json and
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
    run_facts = spec.get("facts", {})
    for f in facts:  # a fact named exactly, else the first whose name starts with it
      key = f if f in run_facts else next((k for k in run_facts if k.startswith(f)), None)
      out[f] = run_facts.get(key, "") if key else ""
    for c in (columns or list(source)):
      if c not in source:
        raise ValueError(f"{d}: table {table!r} has no column {c!r}; it has {list(source)}")
      out[c] = source[c]
    rows.append(out)
  return _table(rows)
