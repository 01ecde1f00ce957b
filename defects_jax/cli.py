"""The ``defects-jax`` command line.

  defects-jax quickstart [--out DIR] [--preset P] [--set field=value ...]
  defects-jax weak_ksdd | baselines_neu | res_acgan  [same flags]
  defects-jax evaluate RUN_DIR
  defects-jax report RUN_DIR
  defects-jax losses-tour

Every experiment subcommand takes ``--preset`` (each has ``smoke`` and its main
preset), any number of ``--set field=value`` overrides of its config, ``--out``
(runs go to ``OUT/<experiment>/<timestamp>/``) and ``--data-dir`` (the folder
holding the datasets; default ``$DEFECTS_JAX_DATA``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

from defects_jax import config as config_lib

# experiment subcommand -> module with get_config(preset), run(cfg, out_dir),
# evaluate_run(run_dir).
EXPERIMENTS = {"quickstart": "experiments.quickstart", "weak_ksdd": "experiments.weak_ksdd",
               "baselines_neu": "experiments.baselines_neu", "res_acgan": "experiments.res_acgan"}


def _experiment(name: str):
  return importlib.import_module(EXPERIMENTS[name])


def _experiment_of_run(run_dir: Path) -> str:
  cfg_path = run_dir / "config.json"
  if not cfg_path.is_file():
    raise SystemExit(f"{run_dir}: not a run folder (no config.json)")
  name = json.loads(cfg_path.read_text()).get("experiment")
  if name not in EXPERIMENTS:
    raise SystemExit(f"{cfg_path}: unknown experiment {name!r}")
  return name


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="defects-jax", description=__doc__.splitlines()[0])
  sub = parser.add_subparsers(dest="command", required=True)
  for name in EXPERIMENTS:
    p = sub.add_parser(name, help=(_experiment(name).__doc__ or "").splitlines()[0])
    p.add_argument("--preset", default=None, help="config preset (default: the main one)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="FIELD=VALUE", help="override a config field (repeatable)")
    p.add_argument("--out", default="runs", help="parent folder of run folders")
    p.add_argument("--data-dir", default=None,
                   help="folder holding the datasets (default: $DEFECTS_JAX_DATA)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
  p = sub.add_parser("evaluate", help="evaluate a run's latest checkpoint on its test split")
  p.add_argument("run_dir")
  p = sub.add_parser("report", help="rebuild report.md of a run folder")
  p.add_argument("run_dir")
  p.add_argument("--results", default=None, metavar="PATH",
                 help="also render the run's tables to PATH (e.g. experiments/results/X.md)")
  p = sub.add_parser("compare", help="one markdown table row per run folder (ablations)")
  p.add_argument("run_dirs", nargs="+")
  p.add_argument("--table", required=True, help="name of a table in the runs' reports")
  p.add_argument("--row", type=int, default=0, help="row of that table (-1: the last)")
  p.add_argument("--columns", default=None, help="comma-separated columns (default: all)")
  p.add_argument("--fact", dest="facts", action="append", default=None,
                 help="a report fact to show (repeatable; default: commit and wall time)")
  p.add_argument("--labels", default=None, help="comma-separated row labels (default: the "
                 "run folder names)")
  sub.add_parser("losses-tour", help="jit every loss on seeded inputs and print a table")
  args = parser.parse_args(argv)

  if args.command in EXPERIMENTS:
    if args.data_dir:
      os.environ["DEFECTS_JAX_DATA"] = str(Path(args.data_dir).expanduser())
    module = _experiment(args.command)
    cfg = module.get_config(args.preset) if args.preset else module.get_config()
    try:
      cfg = config_lib.override(cfg, args.overrides)
    except ValueError as e:
      parser.error(str(e))
    run_dir = module.run(cfg, args.out, progress=not args.no_progress)
    print(f"\nrun folder: {run_dir}\nreport:     {run_dir / 'report.md'}")
    return 0
  if args.command == "evaluate":
    run_dir = Path(args.run_dir)
    result = _experiment(_experiment_of_run(run_dir)).evaluate_run(run_dir)
    print(json.dumps(result, indent=1))
    return 0
  if args.command == "report":
    from defects_jax import report  # pylint: disable=g-import-not-at-top
    print(report.write_report(args.run_dir))
    if args.results:
      print(report.write_results(args.run_dir, args.results))
    return 0
  if args.command == "compare":
    from defects_jax import report  # pylint: disable=g-import-not-at-top
    split = lambda v: [c for c in v.split(",") if c] if v else None
    kw = {} if args.facts is None else {"facts": [f for f in args.facts if f]}
    print(report.compare_runs(args.run_dirs, table=args.table, row=args.row,
                              columns=split(args.columns), labels=split(args.labels), **kw))
    return 0
  if args.command == "losses-tour":
    from experiments import losses_tour  # pylint: disable=g-import-not-at-top
    losses_tour.main([])
    return 0
  return 2


if __name__ == "__main__":
  sys.exit(main())
