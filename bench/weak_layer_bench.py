"""Where the weak detector's CPU time goes: JAX vs PyTorch, layer by layer.

Run: python bench/weak_layer_bench.py [--size 128] [--batch 2] [--reps 10]
     [--lnet-kernel 15]

For every convolution of ``models.WeakDetector``'s shared layers and LNet at
the image size of ``bench/train_step_bench.py --models weak_stage1`` (size 128
-> 352x128; batch 2 = one positive/negative pair), times the jitted forward +
backward (gradients wrt input and kernel) of

* ``jax``: reflect pad + ``models.conv2d`` (the lowering the model uses),
* ``jax zero``: the same conv with zero padding (``padding="SAME"``): what
  reflect padding costs,
* ``taps`` / ``im2col``: reflect pad + ``conv2d`` forced to each lowering
  (shifted matmuls; one matmul over all taps),
* ``torch``: ``F.pad(mode="reflect")`` + ``F.conv2d`` in plain PyTorch (NCHW),

and prints median ms per layer and the ratio. The rows sum to most of a stage-1
update (BatchNorm, ReLU, pooling and the optimiser are left out). Without
torch the PyTorch column is skipped.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from defects_jax.models import conv2d
from defects_jax.models.layers import reflect_pad
from defects_jax.models.weak_detector import SHARED_LAYERS


def weak_layers(h: int, w: int, lnet_kernel: int = 15, lnet_wide: int = 512):
  """(name, H, W, C_in, C_out, kernel) of every conv in shared layers + LNet."""
  rows, cin = [], 1
  for i, (width, pool_after) in enumerate(SHARED_LAYERS):
    rows.append((f"shared conv{i}", h, w, cin, width, 3))
    cin = width
    if pool_after:
      h, w = h // 2, w // 2
  rows += [("lnet conv0", h, w, 128, 64, 5), ("lnet conv1", h, w, 64, 64, 5),
           ("lnet conv2 (wide)", h, w, 64, lnet_wide, lnet_kernel),
           ("lnet conv3 (1x1)", h, w, lnet_wide, 1, 1)]
  return rows


def _median_ms(fn, reps):
  fn()
  times = []
  for _ in range(reps):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return 1000 * statistics.median(times)


def time_jax(b, h, w, cin, cout, k, reps, reflect=True, lowering="auto"):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((b, h, w, cin)), jnp.float32)
  kern = jnp.asarray(rng.standard_normal((k, k, cin, cout)) * 0.05, jnp.float32)

  def loss(x, kern):
    if reflect and k > 1:
      y = conv2d(reflect_pad(x, k // 2), kern, padding="VALID", lowering=lowering)
    else:
      y = conv2d(x, kern, padding="SAME", lowering=lowering)
    return jnp.sum(y * y)

  fn = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
  return _median_ms(lambda: jax.block_until_ready(fn(x, kern)), reps)


def time_torch(b, h, w, cin, cout, k, reps):
  import torch  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
  g = torch.Generator().manual_seed(0)
  x = torch.randn(b, cin, h, w, generator=g, requires_grad=True)
  kern = (torch.randn(cout, cin, k, k, generator=g) * 0.05).requires_grad_(True)

  def step():
    x.grad = kern.grad = None
    xp = F.pad(x, (k // 2,) * 4, mode="reflect") if k > 1 else x
    y = F.conv2d(xp, kern)
    (y * y).sum().backward()

  return _median_ms(step, reps)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--size", type=int, default=128,
                 help="image width; height = 11/4 x size rounded to 32 (train_step_bench)")
  p.add_argument("--batch", type=int, default=2)
  p.add_argument("--reps", type=int, default=10)
  p.add_argument("--lnet-kernel", type=int, default=15)
  args = p.parse_args(argv)
  h = max(64, round(args.size * 11 / 4 / 32) * 32)
  try:
    import torch  # pylint: disable=g-import-not-at-top,unused-import
    have_torch = True
  except ImportError:
    have_torch = False
  print(f"weak detector convs at {h}x{args.size}, batch {args.batch}, forward + backward, "
        f"median of {args.reps}; jax {jax.__version__} on {jax.devices()[0].platform}")
  print("| layer | map | C_in->C_out | k | GFLOP | jax ms | jax zero-pad ms | taps ms | "
        "im2col ms | torch ms | torch/jax |")
  print("|---|---|---|---|---|---|---|---|---|---|---|")
  tot = np.zeros(5)
  for name, hh, ww, cin, cout, k in weak_layers(h, args.size, args.lnet_kernel):
    gflop = 3 * 2 * args.batch * hh * ww * cin * cout * k * k / 1e9  # forward x 3
    row = np.array([
        time_jax(args.batch, hh, ww, cin, cout, k, args.reps),
        time_jax(args.batch, hh, ww, cin, cout, k, args.reps, reflect=False),
        time_jax(args.batch, hh, ww, cin, cout, k, args.reps, lowering="taps"),
        time_jax(args.batch, hh, ww, cin, cout, k, args.reps, lowering="im2col"),
        time_torch(args.batch, hh, ww, cin, cout, k, args.reps) if have_torch else np.nan])
    tot += row
    cells = " | ".join(f"{v:.1f}" for v in row)
    print(f"| {name} | {hh}x{ww} | {cin}->{cout} | {k} | {gflop:.2f} | {cells} | "
          f"{row[4] / row[0]:.2f} |")
  cells = " | ".join(f"{v:.1f}" for v in tot)
  print(f"| total | | | | | {cells} | {tot[4] / tot[0]:.2f} |")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
