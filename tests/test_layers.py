"""The architecture's rules, checked on the source:

* library modules never import experiments (only the command line, which runs
  them, reads the registry);
* experiments never import each other; bench/ imports the library, not drivers;
* no top-level ``experiments`` module is installed; ``defects_jax.experiments``
  is the drivers' package, and pyproject lists every package;
* the registry and the drivers agree (presets, protocol), and every preset
  validates.
"""

import ast
import dataclasses
import importlib
import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from defects_jax import config as config_lib
from defects_jax import experiments

ROOT = Path(__file__).resolve().parents[1]
CLI_MODULES = {"cli.py", "__main__.py"}  # the entry point reads the registry


def _imports(path: Path) -> set[str]:
  """Absolute module names imported by a file (``from a.b import c`` -> a.b and
  a.b.c)."""
  tree = ast.parse(path.read_text(), filename=str(path))
  out = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      out.update(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      out.add(node.module)
      out.update(f"{node.module}.{a.name}" for a in node.names)
  return out


def _is_experiments(name: str) -> bool:
  return (name == "experiments" or name.startswith("experiments.")
          or name == "defects_jax.experiments" or name.startswith("defects_jax.experiments."))


def test_library_modules_never_import_experiments():
  bad = {}
  for path in (ROOT / "defects_jax").rglob("*.py"):
    if path.name in CLI_MODULES and path.parent.name == "defects_jax":
      continue
    found = sorted(n for n in _imports(path) if _is_experiments(n))
    if found:
      bad[str(path.relative_to(ROOT))] = found
  assert not bad, bad


def test_experiments_never_import_each_other_or_a_top_level_experiments():
  drivers = {p.stem for p in (ROOT / "experiments").glob("*.py") if p.stem != "__init__"}
  bad = {}
  for path in (ROOT / "experiments").glob("*.py"):
    found = sorted(n for n in _imports(path) if n == "experiments" or n.startswith(
        "experiments.") or any(n in (f"defects_jax.experiments.{d}",) for d in drivers
                               if d != path.stem))
    if found:
      bad[path.name] = found
  assert not bad, bad


def test_bench_imports_the_library_not_drivers():
  bad = {p.name: sorted(n for n in _imports(p) if _is_experiments(n))
         for p in (ROOT / "bench").glob("*.py")}
  assert not {k: v for k, v in bad.items() if v}


def test_tests_do_not_import_a_top_level_experiments():
  bad = {str(p.relative_to(ROOT)): sorted(n for n in _imports(p)
                                          if n == "experiments" or n.startswith("experiments."))
         for p in (ROOT / "tests").rglob("*.py")}
  assert not {k: v for k, v in bad.items() if v}


def test_no_top_level_experiments_module_is_installed(tmp_path):
  """Outside the repository (so the checkout's folder is not on the path), the
  installed package has defects_jax.experiments and no `experiments`."""
  code = ("import importlib.util as u, json; print(json.dumps([u.find_spec('experiments') is "
          "None, u.find_spec('defects_jax.experiments') is not None]))")
  out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                       text=True, check=True).stdout
  assert out.strip() == "[true, true]", out


def test_pyproject_lists_every_package():
  project = tomllib.loads((ROOT / "pyproject.toml").read_text())
  listed = set(project["tool"]["setuptools"]["packages"])
  found = {".".join(p.parent.relative_to(ROOT).parts)
           for p in (ROOT / "defects_jax").rglob("__init__.py")}
  assert listed == found | {"defects_jax.experiments"}
  assert project["tool"]["setuptools"]["package-dir"] == {"defects_jax.experiments":
                                                          "experiments"}


def test_the_command_line_help_imports_no_driver():
  """`defects-jax --help` and an experiment's --help read the registry only."""
  code = ("import sys\nfrom defects_jax import cli\n"
          "try:\n  cli.main(['weak_ksdd', '--help'])\nexcept SystemExit:\n  pass\n"
          "print(sorted(m for m in sys.modules if m.startswith('defects_jax.experiments.') "
          "or m in ('jax', 'flax', 'grain')))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True).stdout
  assert out.strip().splitlines()[-1] == "[]", out


def _driver_modules():
  return sorted(p.stem for p in (ROOT / "experiments").glob("*.py")
                if p.stem not in ("__init__", "losses_tour"))


def test_every_driver_is_registered():
  assert _driver_modules() == sorted(experiments.EXPERIMENTS)


@pytest.mark.parametrize("name", sorted(experiments.EXPERIMENTS))
def test_registry_agrees_with_the_driver(name):
  entry = experiments.get(name)
  module = entry.load()
  assert module.NAME == name
  assert set(module.PRESETS) == set(entry.presets), "registry and PRESETS list other presets"
  assert entry.default_preset in module.PRESETS
  for fn in ("run", "evaluate", "get_config"):
    assert callable(getattr(module, fn)), fn
  assert issubclass(module.Config, config_lib.Base)
  for preset, cfg in module.PRESETS.items():
    assert cfg.preset == preset  # stamped by config.presets
    cfg.validate()
    assert module.get_config(preset) is cfg
  if "paper" in module.PRESETS:
    assert config_lib.differs_from_paper(module.PRESETS["paper"], module.PRESETS["paper"]) == []
    for preset, info in entry.presets.items():
      if preset.startswith("paper"):
        assert info.device == "gpu", preset
    if "smoke" in module.PRESETS:
      assert config_lib.differs_from_paper(module.PRESETS["smoke"], module.PRESETS["paper"])
  # every field round-trips through config.json
  for cfg in module.PRESETS.values():
    assert config_lib.from_dict(module.Config, config_lib.to_dict(cfg)) == cfg
  fields = {f.name for f in dataclasses.fields(module.Config)}
  assert {"preset", "dataset", "seed", "log_every", "checkpoint_every", "eval_batch",
          "on_error", "worker_count"} <= fields
