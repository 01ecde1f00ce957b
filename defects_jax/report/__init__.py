"""Run reports: matplotlib figures and report.md."""

from defects_jax.report import figures
from defects_jax.report.report import compare_runs
from defects_jax.report.report import write_report
from defects_jax.report.report import git_commit
from defects_jax.report.report import new_run_dir
from defects_jax.report.report import write_results
