"""Tests of the report figures and report.md rendering."""

import json
from pathlib import Path

import numpy as np
import pytest

from defects_jax import metrics
from defects_jax.report import figures
from defects_jax.report import write_report


def test_figures_write_pngs(tmp_path):
  lines = [{"step": s, "split": "train", "loss": 1.0 / s, "accuracy": 0.5} for s in (1, 2, 3)]
  lines.append({"step": 3, "split": "eval", "accuracy": 0.6})
  rng = np.random.default_rng(0)
  y = rng.integers(0, 2, 40)
  p, r, _ = metrics.precision_recall_curve(y, rng.random(40))
  paths = [
      figures.loss_curves(lines, tmp_path / "c.png", keys=["loss", "accuracy"]),
      figures.confusion_matrix(np.array([[5, 1], [2, 7]]), ["a", "b"], tmp_path / "cm.png"),
      figures.image_grid(rng.integers(0, 255, (5, 8, 8, 1), dtype=np.uint8), list("abcde"),
                         tmp_path / "g.png", cols=3),
      figures.pr_curve(p, r, tmp_path / "pr.png", label="AP 0.5"),
      figures.heatmap_overlays(rng.uniform(-1, 1, (2, 16, 8, 1)), rng.random((2, 4, 2)),
                               tmp_path / "h.png", masks=np.zeros((2, 16, 8)),
                               titles=["x", "y"]),
      figures.heatmap_overlays(rng.uniform(-1, 1, (5, 16, 8, 1)), rng.random((5, 4, 2)),
                               tmp_path / "h3.png", masks=np.zeros((5, 16, 8)), per_row=3),
  ]
  for path in paths:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000
  with pytest.raises(ValueError, match="no images"):
    figures.heatmap_overlays(np.zeros((0, 8, 8, 1)), np.zeros((0, 1, 1)), tmp_path / "e.png")


def test_write_report_renders_tables_figures_and_banners(tmp_path):
  spec = {"title": "T", "banners": ["SYNTHETIC"], "facts": {"seed": 0, "acc": 0.5},
          "tables": {"Metrics": [{"a": 1.0, "b": "x"}]}, "figures": {"Curves": "figures/c.png"},
          "notes": ["n1"]}
  (tmp_path / "report.json").write_text(json.dumps(spec))
  text = write_report(tmp_path).read_text()
  assert text.startswith("# T") and "> **SYNTHETIC**" in text
  assert "| seed | 0 |" in text and "| 1.0000 | x |" in text
  assert "![Curves](figures/c.png)" in text and "- n1" in text
  with pytest.raises(FileNotFoundError, match="no report.json"):
    write_report(tmp_path / "missing")


def test_write_results_renders_tables_and_the_command(tmp_path):
  from defects_jax.report import write_results
  spec = {"title": "T", "facts": {"seed": 3}, "tables": {"M": [{"AP": 0.5}]},
          "figures": {"F": "figures/f.png"}}
  (tmp_path / "report.json").write_text(json.dumps(spec))
  (tmp_path / "config.json").write_text(json.dumps({"experiment": "weak_ksdd",
                                                    "preset": "smoke", "seed": 3,
                                                    "widths": [1, 2]}))
  text = write_results(tmp_path, tmp_path / "out" / "r.md").read_text()
  assert "defects-jax weak_ksdd --preset smoke --set seed=3 --set widths=1,2" in text
  assert "| 0.5000 |" in text and "![F]" not in text


def test_small_floats_are_shown_in_scientific_notation():
  from defects_jax.report.report import _fmt  # pylint: disable=g-import-not-at-top
  assert _fmt(0.12345) == "0.1235" and _fmt(2.1e-06) == "2.10e-06" and _fmt(0.0) == "0.0000"
  assert _fmt(-3e-4) == "-3.00e-04" and _fmt(7) == "7" and _fmt("yes") == "yes"


def _fake_run(root, name, cfg, ap, mean_ap):
  d = root / name
  d.mkdir()
  (d / "config.json").write_text(json.dumps({"experiment": "weak_ksdd", **cfg}))
  (d / "report.json").write_text(json.dumps({
      "title": "t", "facts": {"commit": "abc1234", "seed": 0},
      "tables": {"Detection": [{"AP": ap, "FP": 3}],
                 "Per fold": [{"fold": 0, "AP": 0.5}, {"fold": "mean", "AP": mean_ap}]}}))
  return d


def test_compare_runs_one_row_per_run_with_config_differences(tmp_path, capsys):
  from defects_jax import cli  # pylint: disable=g-import-not-at-top
  from defects_jax.report import compare_runs  # pylint: disable=g-import-not-at-top
  a = _fake_run(tmp_path, "a", {"rotate": False, "lr": 0.01}, 0.8, 0.7)
  b = _fake_run(tmp_path, "b", {"rotate": True, "lr": 0.01}, 0.75, 0.65)
  lines = compare_runs([a, b], table="Detection", facts=("commit",)).splitlines()
  assert lines[0] == "| run | config vs first run | commit | AP | FP |"
  assert lines[2] == "| a | (reference) | abc1234 | 0.8000 | 3 |"
  assert lines[3] == "| b | rotate=True | abc1234 | 0.7500 | 3 |"
  assert cli.main(["compare", str(a), str(b), "--table", "Per fold", "--row", "-1",
                   "--columns", "AP", "--fact", "", "--labels", "frozen,rotated"]) == 0
  out = capsys.readouterr().out.splitlines()
  assert out[0] == "| run | config vs first run | AP |"
  assert out[3] == "| rotated | rotate=True | 0.6500 |"
  with pytest.raises(ValueError, match="1 labels for 2 run folders"):
    compare_runs([a, b], table="Detection", labels=["x"])
  with pytest.raises(ValueError, match="no table 'Nope'"):
    compare_runs([a], table="Nope")
  with pytest.raises(ValueError, match="no row 5"):
    compare_runs([a], table="Detection", row=5)
  with pytest.raises(ValueError, match="no column 'AUC'"):
    compare_runs([a], table="Detection", columns=["AUC"])


def test_cells_are_formatted_for_people():
  """Percentages with two decimals, seconds with one, booleans as yes/no, dicts
  and lists spelled out: no Python reprs in a report."""
  from defects_jax.report.report import _fmt, _table  # pylint: disable=g-import-not-at-top
  assert _fmt(67.52, "accuracy %") == "67.52" and _fmt(8.4, "seconds") == "8.4"
  assert _fmt(True) == "yes" and _fmt({"resnet18": "no", "vgg16": "w.pth"}) == (
      "resnet18: no; vgg16: w.pth")
  assert _fmt((8, 16)) == "8, 16" and _fmt(float("nan")) == "n/a" and _fmt(None) == "-"
  text = _table([{"n=10": 59.5, "n=30": 76.333}], "Accuracy % by n")
  assert text.splitlines()[2] == "| 59.50 | 76.33 |"
  spec = {"title": "T", "facts": {"pretrained": {"a": None}, "flips": False},
          "tables": {"Cells": [{"seconds": 3.25, "accuracy %": 50.0}]}}
  import tempfile  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as d:
    (Path(d) / "report.json").write_text(json.dumps(spec))
    out = write_report(d).read_text()
  assert "| pretrained | a: - |" in out and "| flips | no |" in out
  assert "| 3.2 | 50.00 |" in out and "{" not in out.split("# T", 1)[1]


def test_confusion_table_has_a_column_per_class_and_recall():
  from defects_jax.report import confusion_table  # pylint: disable=g-import-not-at-top
  rows = confusion_table(np.array([[3, 1], [0, 4]]), ["synthetic-a", "synthetic-b"])
  assert rows[0] == {"true \\ predicted": "synthetic-a", "synthetic-a": 3, "synthetic-b": 1,
                     "recall %": 75.0}
  assert rows[1]["recall %"] == 100.0


def test_heat_maps_get_a_colour_bar_and_grids_mark_mistakes(tmp_path, monkeypatch):
  import matplotlib.figure  # pylint: disable=g-import-not-at-top
  import matplotlib.axes  # pylint: disable=g-import-not-at-top
  bars, titles = [], []
  real_bar, real_title = matplotlib.figure.Figure.colorbar, matplotlib.axes.Axes.set_title

  def bar(self, *a, **kw):
    bars.append(kw)
    return real_bar(self, *a, **kw)

  def title(self, label, *a, **kw):
    titles.append((label, kw.get("color")))
    return real_title(self, label, *a, **kw)
  monkeypatch.setattr(matplotlib.figure.Figure, "colorbar", bar)
  monkeypatch.setattr(matplotlib.axes.Axes, "set_title", title)
  rng = np.random.default_rng(0)
  figures.heatmap_overlays(rng.uniform(-1, 1, (2, 16, 8, 1)), rng.random((2, 4, 2)),
                           tmp_path / "h.png", masks=np.zeros((2, 16, 8)))
  assert len(bars) == 1
  figures.image_grid(rng.integers(0, 255, (3, 8, 8, 1), dtype=np.uint8), ["a", "b", "c"],
                     tmp_path / "g.png", mistakes=[False, True, False])
  assert [c for t, c in titles if t in ("a", "b", "c")] == ["black", "red", "black"]
