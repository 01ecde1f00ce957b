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


def weak_layers(h: int, w: int, lnet_kernel: int = 15, lnet_wide: int = 512):
  """(name, H, W, C_in, C_out, kernel) of every conv in shared layers + LNet."""
  rows, cin = [], 1
  for i, (width, pool_after) in enumerate([(32, False), (32, True), (64, False), (64, True),
                                           (128, False), (128, True), (128, False)]):
    rows.append((f"shared conv{i}", h, w, cin, width, 3))
    cin = width
    if pool_after:
      h, w = h // 2, w // 2
  rows += [("lnet conv0", h, w, 128, 64, 5), ("lnet conv1", h, w, 64, 64, 5),
           (f"lnet conv2 (wide)", h, w, 64, lnet_wide, lnet_kernel),
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


def time_jax(b, h, w, cin, cout, k, reps, reflect=True):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((b, h, w, cin)), jnp.float32)
  kern = jnp.asarray(rng.standard_normal((k, k, cin, cout)) * 0.05, jnp.float32)

  def loss(x, kern):
    if reflect and k > 1:
      y = conv2d(reflect_pad(x, k // 2), kern, padding="VALID")
    else:
      y = conv2d(x, kern, padding="SAME")
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
  print("| layer | map | C_in->C_out | k | jax ms | jax zero-pad ms | torch ms | torch/jax |")
  print("|---|---|---|---|---|---|---|---|")
  tot = [0.0, 0.0, 0.0]
  for name, hh, ww, cin, cout, k in weak_layers(h, args.size, args.lnet_kernel):
    j = time_jax(args.batch, hh, ww, cin, cout, k, args.reps)
    z = time_jax(args.batch, hh, ww, cin, cout, k, args.reps, reflect=False)
    t = time_torch(args.batch, hh, ww, cin, cout, k, args.reps) if have_torch else float("nan")
    tot = [tot[0] + j, tot[1] + z, tot[2] + t]
    print(f"| {name} | {hh}x{ww} | {cin}->{cout} | {k} | {j:.1f} | {z:.1f} | {t:.1f} | "
          f"{t / j:.2f} |")
  print(f"| total | | | | {tot[0]:.1f} | {tot[1]:.1f} | {tot[2]:.1f} | {tot[2] / tot[0]:.2f} |")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
