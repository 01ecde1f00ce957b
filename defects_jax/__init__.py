"""defects-jax: few-shot, class-imbalanced surface-defect recognition in pure JAX.

Subpackages:
  losses  pure loss functions of the five reimplemented papers.
"""

__version__ = "0.1.0"
