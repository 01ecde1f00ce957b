"""The command line as a new user meets it (issue: resume, messages instead of
tracebacks, logs without a terminal, safe defaults, discoverable presets,
honest flags, evaluate/report on any run, validation before work, reports).

Expected errors go through ``cli.main`` and must come back as an exit code and
one to three lines on stderr, never a traceback."""

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from defects_jax import cli
from defects_jax import errors

ROOT = Path(__file__).resolve().parents[1]


def _err(capsys, code, argv):
  """Runs main(argv), expects exit status ``code`` and a short message."""
  assert cli.main(argv) == code
  err = capsys.readouterr().err
  assert "Traceback" not in err, err
  lines = [l for l in err.splitlines() if l.strip() and not l.startswith("[")]
  assert 1 <= len(lines) <= 3, err
  assert lines[0].startswith("defects-jax: error: "), err
  return "\n".join(lines)


def _no_runs(out: Path):
  assert not out.exists() or not any(out.rglob("config.json")), list(out.rglob("*"))


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch):
  # setenv first so that monkeypatch restores the variable's original state even
  # when main() sets it (--data-dir)
  monkeypatch.setenv("DEFECTS_JAX_DATA", "")
  monkeypatch.delenv("DEFECTS_JAX_DATA")


# --------------------------------------------------------------------------
# Messages, not tracebacks; validation before any folder exists
# --------------------------------------------------------------------------


def test_unknown_preset_is_a_usage_error(capsys, tmp_path):
  with pytest.raises(SystemExit) as e:
    cli.main(["quickstart", "--preset", "nope", "--out", str(tmp_path)])
  assert e.value.code == 2
  err = capsys.readouterr().err
  assert "invalid choice: 'nope'" in err and "Traceback" not in err
  _no_runs(tmp_path)


@pytest.mark.parametrize("sets, message", [
    (["nope=1"], "unknown field 'nope'"),
    (["steps=-5"], "config field 'steps': must be >= 1, got -5"),
    (["steps=abc"], "override 'steps=abc'"),
    (["widths="], "config field 'widths': needs at least one width"),
])
def test_bad_config_stops_before_any_folder(capsys, tmp_path, sets, message):
  argv = ["quickstart", "--preset", "smoke", "--out", str(tmp_path)]
  for s in sets:
    argv += ["--set", s]
  text = _err(capsys, 2, argv)
  assert message in text and "--set" in text
  _no_runs(tmp_path)


@pytest.mark.parametrize("experiment, sets, message", [
    ("baselines_neu", ["models=resnet9"], "unknown ['resnet9']"),
    ("baselines_neu", ["shots="], "needs at least one n"),
    ("res_acgan", ["variants=senet"], "unknown ['senet']"),
    ("weak_ksdd", ["image_height=60"], "must be a multiple of 8"),
])
def test_unknown_names_and_empty_tuples_are_config_errors(capsys, tmp_path, experiment, sets,
                                                          message):
  argv = [experiment, "--preset", "smoke", "--out", str(tmp_path)]
  for s in sets:
    argv += ["--set", s]
  assert message in _err(capsys, 2, argv)
  _no_runs(tmp_path)


def test_missing_data_folder_names_it_and_leaves_no_run(capsys, tmp_path):
  text = _err(capsys, 1, ["baselines_neu", "--preset", "cpu_reduced", "--data-dir",
                          str(tmp_path / "nowhere"), "--out", str(tmp_path / "runs")])
  assert "nowhere" in text and "dataset folder not found" in text
  _no_runs(tmp_path / "runs")
  text = _err(capsys, 1, ["baselines_neu", "--preset", "cpu_reduced", "--out",
                          str(tmp_path / "runs")])
  assert "--data-dir" in text and "DEFECTS_JAX_DATA" in text  # no data root given at all
  _no_runs(tmp_path / "runs")


def _fake_kolektor(root: Path, with_mask: bool):
  d = root / "KolektorSDD" / "kos01"
  d.mkdir(parents=True)
  Image.fromarray(np.zeros((128, 64), np.uint8)).save(d / "Part0.jpg")
  if with_mask:
    Image.fromarray(np.zeros((128, 64), np.uint8)).save(d / "Part0_label.png")


def test_missing_kolektor_mask_is_named(capsys, tmp_path):
  _fake_kolektor(tmp_path / "data", with_mask=False)
  text = _err(capsys, 1, ["weak_ksdd", "--preset", "cpu_small", "--data-dir",
                          str(tmp_path / "data"), "--out", str(tmp_path / "runs")])
  assert "Part0.jpg: no mask Part0_label.bmp or Part0_label.png" in text
  _no_runs(tmp_path / "runs")


def _fake_neu(root: Path, per_class: int, corrupt: str | None = None) -> Path:
  rng = np.random.default_rng(0)
  for prefix in ("Cr", "In", "Pa", "PS", "RS", "Sc"):
    d = root / "NEU-CLS" / prefix
    d.mkdir(parents=True)
    for i in range(1, per_class + 1):
      Image.fromarray(rng.integers(0, 255, (200, 200), dtype=np.uint8)).save(
          d / f"{prefix}_{i}.png")
  if corrupt:
    (root / "NEU-CLS" / corrupt).write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
  return root


def test_corrupt_image_stops_before_training_naming_the_file(capsys, tmp_path):
  data = _fake_neu(tmp_path / "data", 16, corrupt="Sc/Sc_16.png")
  text = _err(capsys, 1, ["baselines_neu", "--preset", "cpu_reduced", "--data-dir", str(data),
                          "--out", str(tmp_path / "runs"), "--set", "shots=10"])
  assert "Sc_16.png: cannot decode image" in text and "--set on_error=skip" in text
  assert "grain" not in text
  _no_runs(tmp_path / "runs")


@pytest.mark.slow
def test_on_error_skip_lists_the_file_and_flags_an_incomplete_copy(capsys, tmp_path):
  """--set on_error=skip trains without the bad file, lists it in the report,
  and the report says the copy differs from the paper protocol's counts."""
  data = _fake_neu(tmp_path / "data", 16, corrupt="Sc/Sc_16.png")
  assert cli.main(["baselines_neu", "--preset", "cpu_reduced", "--data-dir", str(data),
                   "--out", str(tmp_path / "runs"), "--no-progress", "--set", "on_error=skip",
                   "--set", "shots=10", "--set", "steps=2", "--set", "image_size=32"]) == 0
  (run_dir,) = (tmp_path / "runs" / "baselines_neu").iterdir()
  report = (run_dir / "report.md").read_text()
  assert "1 unreadable data file(s) left out (on_error=skip): Sc_16" in report
  assert "Unreadable file left out: Sc_16:" in report and "cannot decode image" in report
  assert "differs from what the paper's protocol assumes (images: 95" in report
  assert "scratches images: 15 (the paper's protocol assumes 300)" in report


def test_grain_wrapped_errors_are_unwrapped_to_the_project_error():
  """An error raised inside a grain pipeline reaches the caller wrapped in
  grain's own exception; the command line finds the project's error in the
  chain."""
  from defects_jax import data  # pylint: disable=g-import-not-at-top

  class Bad:
    def __len__(self):
      return 4

    def __getitem__(self, i):
      raise data.DatasetError(f"/data/img_{i}.png: cannot decode image (test)")

  with pytest.raises(Exception) as e:  # pylint: disable=broad-except
    next(iter(data.make_loader(Bad(), batch_size=2, shuffle=False)))
  found = errors.find_project_error(e.value)
  assert isinstance(found, data.DatasetError) and "img_0.png" in str(found)


def test_nan_stop_is_a_message_and_the_run_folder_says_failed(capsys, tmp_path):
  text = _err(capsys, 1, ["quickstart", "--preset", "smoke", "--out", str(tmp_path),
                          "--no-progress", "--set", "learning_rate=inf", "--set", "steps=20"])
  assert re.search(r"metric '\w+' is nan at step \d+; stopping", text), text
  (run_dir,) = (tmp_path / "quickstart").iterdir()
  assert json.loads((run_dir / "status.json").read_text())["status"] == "failed"
  assert f"defects-jax report {run_dir}" in text


def test_debug_shows_the_traceback(tmp_path):
  with pytest.raises(errors.ConfigError):
    cli.main(["--debug", "quickstart", "--preset", "smoke", "--set", "steps=0", "--out",
              str(tmp_path)])


# --------------------------------------------------------------------------
# Safe defaults
# --------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["weak_ksdd"], ["res_acgan", "--preset", "paper"],
                                  ["baselines_neu", "--preset", "gpu"]])
def test_gpu_presets_refuse_the_cpu(capsys, tmp_path, argv):
  text = _err(capsys, 2, argv + ["--out", str(tmp_path)])
  assert "is meant for a GPU" in text and "--allow-cpu" in text and "smoke" in text
  _no_runs(tmp_path)


# --------------------------------------------------------------------------
# Discoverable
# --------------------------------------------------------------------------


def test_help_lists_experiments_and_presets(capsys):
  with pytest.raises(SystemExit):
    cli.main(["--help"])
  out = capsys.readouterr().out
  for name in ("quickstart", "weak_ksdd", "baselines_neu", "res_acgan", "resume", "runs"):
    assert name in out
  assert "presets: smoke, cpu_small, cpu_reduced, gpu, paper" in out
  with pytest.raises(SystemExit):
    cli.main(["res_acgan", "--help"])
  out = capsys.readouterr().out
  assert "Res-ACGAN + Wasserstein divergence" in out
  assert re.search(r"paper_ablation\s+\[gpu\] Table 3", out)
  assert re.search(r"smoke\s+\[cpu\] SYNTHETIC", out) and "--print-config" in out


def test_print_config_shows_every_field_and_exits(capsys, tmp_path):
  assert cli.main(["weak_ksdd", "--preset", "cpu_small", "--set", "seed=3", "--print-config",
                   "--out", str(tmp_path)]) == 0
  out = capsys.readouterr().out
  assert out.startswith("# weak_ksdd --preset cpu_small --set seed=3")
  assert re.search(r"^seed = 3\s+# root PRNG seed", out, re.M)
  assert re.search(r"^stage1_lr = 0.01\s+# paper: section IV.C: SGD lr 0.1", out, re.M)
  _no_runs(tmp_path)


def test_version_and_python_dash_m():
  out = subprocess.run([sys.executable, "-m", "defects_jax", "--version"], capture_output=True,
                       text=True, check=True).stdout
  assert re.match(r"defects-jax \d+\.\d+\.\d+ \(jax ", out)


# --------------------------------------------------------------------------
# Honest flags and docs
# --------------------------------------------------------------------------

# Flags of other programs the README names (pip, pytest, the bench scripts).
OTHER_FLAGS = {"--models", "--sizes", "--steps", "--warmup", "--batch", "--frameworks",
               "--json", "--critic-loop", "--lowering", "--size", "--reps", "--epochs",
               "--lnet-kernel", "--worker", "--seed",
               "--no-deps", "--durations", "--dist", "--maxprocesses", "--numprocesses"}


def _flags(text: str) -> set[str]:
  return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))


def test_every_flag_in_the_readme_and_in_messages_exists():
  known = cli.option_strings()
  readme = (ROOT / "README.md").read_text()
  assert _flags(readme) - known - OTHER_FLAGS == set()
  # every --flag in the messages and hints of the errors the library and the drivers raise
  sources = list((ROOT / "defects_jax").rglob("*.py")) + list((ROOT / "experiments").glob("*.py"))
  in_messages = set()
  for path in sources:
    for node in ast.walk(ast.parse(path.read_text())):
      if not isinstance(node, ast.Call):
        continue
      f = node.func
      callee = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
      if callee.endswith("Error") or callee in ("check", "_error", "Interrupted"):
        for sub in ast.walk(node):
          if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            in_messages |= _flags(sub.value)
  assert "--set" in in_messages and "--data-dir" in in_messages  # the scan sees messages
  assert in_messages - known == set(), in_messages - known
  assert "--data_root" not in readme


# --------------------------------------------------------------------------
# Resume, evaluate, report and runs on an interrupted run: the SIGINT test in
# tests/experiments/test_quickstart.py (it shares the quickstart smoke run)
# --------------------------------------------------------------------------


def test_not_a_run_folder(capsys, tmp_path):
  for command in ("evaluate", "report", "resume"):
    text = _err(capsys, 2, [command, str(tmp_path)])
    assert "not a run folder" in text
