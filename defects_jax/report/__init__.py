"""Run reports: matplotlib figures and report.md."""

from defects_jax.report import figures
from defects_jax.report.report import compare_runs
from defects_jax.report.report import confusion_table
from defects_jax.report.report import write_report
from defects_jax.report.report import write_results
