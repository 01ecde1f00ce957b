"""flax.linen models (NHWC; ``__call__(x, *, train)``; BatchNorm statistics in
the ``batch_stats`` collection; dropout from the ``dropout`` rng)."""

from defects_jax.models.layers import ConvBN
from defects_jax.models.small_cnn import SmallCNN
from defects_jax.models.weak_detector import WeakDetector
