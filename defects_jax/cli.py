"""The ``defects-jax`` command line.

  defects-jax EXPERIMENT [--preset P] [--set field=value ...] [--out DIR] [--data-dir DIR]
                         [--print-config] [--allow-cpu] [--no-progress]
  defects-jax resume RUN_DIR        continue an interrupted run from its checkpoints
  defects-jax evaluate RUN_DIR      restore each cell's latest checkpoint, test it
  defects-jax report RUN_DIR        rebuild report.md (partial for an unfinished run)
  defects-jax runs [OUT]            list run folders: experiment, preset, status, headline
  defects-jax compare RUN... --table T
  defects-jax losses-tour

The experiments and their presets come from the registry
(``defects_jax.experiments.EXPERIMENTS``); ``defects-jax EXPERIMENT --help``
describes one. Expected errors (a wrong preset or field, a missing data
folder, a corrupt image, a NaN, Ctrl-C) print one or two lines and exit
non-zero; ``--debug`` (or ``DEFECTS_JAX_DEBUG=1``) shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
from pathlib import Path

from defects_jax import config as config_lib
from defects_jax import errors

PROG = "defects-jax"
RUN_COMMANDS = ("resume", "evaluate", "report", "runs", "compare", "losses-tour")


def _registry():
  from defects_jax import experiments  # pylint: disable=g-import-not-at-top
  return experiments


def _version() -> str:
  def v(pkg):
    try:
      return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
      return "not installed"
  return (f"{PROG} {v('defects-jax')} (jax {v('jax')}, flax {v('flax')}, optax {v('optax')}, "
          f"grain {v('grain')}, orbax-checkpoint {v('orbax-checkpoint')})")


def _experiment_epilog(exp) -> str:
  width = max(len(n) for n in exp.presets)
  lines = ["presets (--preset NAME; default: " + exp.default_preset + "):"]
  for name, info in exp.presets.items():
    lines.append(f"  {name:<{width}}  [{info.device}] {info.about}")
  lines += ["", "fields: `--print-config` prints every field of the chosen preset with its "
                "value and source; change one with --set field=value (repeatable).",
            "GPU presets stop on a CPU backend unless --allow-cpu."]
  if exp.commands:
    lines += ["", "examples:"] + [f"  {c}" for c in exp.commands]
  return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
  reg = _registry()
  listing = "\n".join(f"  {name:<14} {exp.about}\n  {'':<14} presets: {', '.join(exp.presets)}"
                      for name, exp in reg.EXPERIMENTS.items())
  parser = argparse.ArgumentParser(
      prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
      description="Few-shot, class-imbalanced surface-defect recognition in pure JAX: run "
                  "the papers' experiments, resume, evaluate and report runs.",
      epilog=f"experiments:\n{listing}\n\n`{PROG} EXPERIMENT --help` describes one and its "
             f"presets. --debug shows tracebacks.")
  parser.add_argument("--version", action="version", version=_version())
  parser.add_argument("--debug", action="store_true",
                      help="show full tracebacks (also DEFECTS_JAX_DEBUG=1)")
  sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
  for name, exp in reg.EXPERIMENTS.items():
    p = sub.add_parser(name, help=exp.about, description=exp.about, epilog=_experiment_epilog(exp),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default=exp.default_preset, choices=list(exp.presets),
                   metavar="NAME", help=f"config preset: {', '.join(exp.presets)} (default: "
                                        f"{exp.default_preset}; listed below)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="FIELD=VALUE", help="override a config field (repeatable)")
    p.add_argument("--out", default="runs",
                   help="parent folder of run folders: runs go to OUT/<experiment>/<timestamp>/")
    _data_dir(p)
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config (preset + --set) and exit")
    _run_flags(p)
  p = sub.add_parser("resume", help="continue an interrupted run from its latest checkpoints "
                                    "with its saved config")
  p.add_argument("run_dir")
  _data_dir(p)
  _run_flags(p)
  p = sub.add_parser("evaluate", help="restore each cell's latest checkpoint of a run (finished "
                                      "or not) and evaluate it on the run's test split")
  p.add_argument("run_dir")
  _data_dir(p)
  p = sub.add_parser("report", help="rebuild report.md of a run folder (an unfinished run "
                                    "gets a partial report marked UNFINISHED)")
  p.add_argument("run_dir")
  p.add_argument("--results", default=None, metavar="PATH",
                 help="also render the run's tables to PATH (e.g. experiments/results/X.md)")
  p = sub.add_parser("runs", help="list run folders: experiment, preset, status, headline")
  p.add_argument("out", nargs="?", default="runs", help="folder to search (default: runs)")
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
  return parser


def _data_dir(p):
  p.add_argument("--data-dir", default=None, metavar="DIR",
                 help="folder holding the datasets (default: $DEFECTS_JAX_DATA)")


def _run_flags(p):
  p.add_argument("--allow-cpu", action="store_true",
                 help="run a GPU preset on the CPU backend anyway")
  p.add_argument("--no-progress", action="store_true",
                 help="no progress bar: plain log lines (as when stderr is not a terminal)")


def option_strings(parser: argparse.ArgumentParser | None = None) -> set[str]:
  """Every ``--flag`` the parser and its subcommands accept (for the test
  that checks the README's and the error messages' flags)."""
  parser = parser or build_parser()
  out = set()
  for action in parser._actions:  # pylint: disable=protected-access
    out.update(s for s in action.option_strings if s.startswith("--"))
    if isinstance(action, argparse._SubParsersAction):  # pylint: disable=protected-access
      for p in action.choices.values():
        out |= option_strings(p)
  return out


def _error(message: str, hint: str = "") -> None:
  print(f"{PROG}: error: {message}", file=sys.stderr)
  if hint:
    print(f"  {hint}", file=sys.stderr)


def main(argv=None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  parser = build_parser()
  args = parser.parse_args(argv)
  debug = args.debug or os.environ.get("DEFECTS_JAX_DEBUG", "") not in ("", "0")
  saved_data_env = os.environ.get("DEFECTS_JAX_DATA")
  try:
    return _dispatch(parser, args)
  except BaseException as e:  # pylint: disable=broad-except
    if debug or isinstance(e, SystemExit):
      raise
    err = errors.find_project_error(e)
    if err is None and isinstance(e, KeyboardInterrupt):
      _error("interrupted (a second Ctrl-C: stopped without saving a checkpoint)")
      return 130
    if err is None:
      raise
    _error(str(err), err.hint)
    run_dir = getattr(e, "run_dir", None) or getattr(err, "run_dir", None)
    if isinstance(err, errors.Interrupted) and run_dir is not None:
      print(f"  resume with: {PROG} resume {run_dir}", file=sys.stderr)
    elif run_dir is not None:
      print(f"  run folder: {run_dir} (status.json says what happened; "
            f"`{PROG} report {run_dir}` renders what exists)", file=sys.stderr)
    return err.exit_code
  finally:  # --data-dir sets the variable for this command only
    if saved_data_env is None:
      os.environ.pop("DEFECTS_JAX_DATA", None)
    else:
      os.environ["DEFECTS_JAX_DATA"] = saved_data_env


def _driver_of_run(run_dir):
  """(registry entry, driver module) of the experiment a run folder ran."""
  from defects_jax import runs  # pylint: disable=g-import-not-at-top
  name, _ = runs.read_run_config(run_dir)
  entry = _registry().get(name)
  return entry, entry.load()


def _dispatch(parser, args) -> int:
  from defects_jax import runs  # pylint: disable=g-import-not-at-top
  reg = _registry()
  if getattr(args, "data_dir", None):
    os.environ["DEFECTS_JAX_DATA"] = str(Path(args.data_dir).expanduser())
  if args.command in reg.EXPERIMENTS:
    entry = reg.get(args.command)
    module = entry.load()
    cfg = config_lib.override(config_lib.get_preset(module.PRESETS, args.preset), args.overrides)
    if args.print_config:
      print(f"# {args.command} --preset {args.preset}"
            + "".join(f" --set {o}" for o in args.overrides))
      print(config_lib.describe(cfg))
      cfg.validate()
      return 0
    run_dir = runs.execute(module, cfg, presets_info=entry.presets, out_dir=args.out,
                           progress=not args.no_progress, allow_cpu=args.allow_cpu)
    print(f"\nrun folder: {run_dir}\nreport:     {run_dir / 'report.md'}")
    return 0
  if args.command == "resume":
    entry, module = _driver_of_run(args.run_dir)
    run_dir = runs.resume(module, args.run_dir, presets_info=entry.presets,
                          progress=not args.no_progress, allow_cpu=args.allow_cpu)
    print(f"\nrun folder: {run_dir}\nreport:     {run_dir / 'report.md'}")
    return 0
  if args.command == "evaluate":
    _, module = _driver_of_run(args.run_dir)
    result = runs.evaluate(module, args.run_dir)
    for cell, r in result.items():
      step = r.get("step")
      what = (f"checkpoint at step {step} of {r.get('of')}" if step is not None
              else "no checkpoint yet")
      print(f"{cell}: {what}", file=sys.stderr)
    print(json.dumps(result, indent=1, default=str))
    return 0
  if args.command == "report":
    from defects_jax import report  # pylint: disable=g-import-not-at-top
    run_dir = Path(args.run_dir)
    runs.read_run_config(run_dir)  # a clear error for a folder that is not a run
    print(report.write_report(run_dir))
    if args.results:
      print(report.write_results(run_dir, args.results))
    return 0
  if args.command == "runs":
    rows = runs.list_runs(args.out)
    if not rows:
      print(f"no run folders under {args.out}")
      return 0
    from defects_jax.report.report import _table  # pylint: disable=g-import-not-at-top
    print(_table(rows))
    return 0
  if args.command == "compare":
    from defects_jax import report  # pylint: disable=g-import-not-at-top
    split = lambda v: [c for c in v.split(",") if c] if v else None
    kw = {} if args.facts is None else {"facts": [f for f in args.facts if f]}
    print(report.compare_runs(args.run_dirs, table=args.table, row=args.row,
                              columns=split(args.columns), labels=split(args.labels), **kw))
    return 0
  if args.command == "losses-tour":
    from defects_jax.experiments import losses_tour  # pylint: disable=g-import-not-at-top
    losses_tour.main([])
    return 0
  parser.error(f"unknown command {args.command!r}")
  return 2


if __name__ == "__main__":
  sys.exit(main())
