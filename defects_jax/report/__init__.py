"""Run reports: matplotlib figures and report.md."""

from defects_jax.report import figures
from defects_jax.report.report import write_report
