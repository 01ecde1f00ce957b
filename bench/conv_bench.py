"""CPU convolution lowerings: XLA's conv vs shifted matmuls ("taps"), per shape.

Run: python bench/conv_bench.py [--batch 32] [--reps 20]
     python bench/conv_bench.py --transpose     # transposed convs (DCGAN generators)

Times the jitted forward + backward (value_and_grad wrt input and kernel) of
one convolution for each lowering of ``defects_jax.models.conv2d``, over the
shapes that ResNet18 and MobileNetV2 meet at 64x64 and 128x128 inputs (dense
3x3, 1x1, strided, depthwise), and prints median ms and GFLOP/s (forward
FLOPs x 3). This is the measurement behind ``choose_lowering``'s rule. A third
column times ``conv2d(lowering="im2col")`` (all taps concatenated into one
matmul): on these shapes (kernels up to 7x7) it lost to XLA on large maps and
to taps on tiny ones; it is the CPU default only for larger kernels
(bench/weak_layer_bench.py).

``--transpose`` times instead the stride-2 3x3 transposed convolutions of a
DCGAN generator (edcgan Table 1's widths from a 4x4 map, and the output layer):
``jax.lax.conv_transpose`` (an input-dilated convolution) against
``models.conv_transpose2d`` (one stride-1 convolution at the input resolution
through ``conv2d``'s lowering, then depth-to-space).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from defects_jax.models import conv2d

# (label, spatial in, C_in, C_out, kernel, stride, groups)
SHAPES = [
    ("3x3 512->512", 1, 512, 512, 3, 1, 1), ("3x3 512->512", 2, 512, 512, 3, 1, 1),
    ("3x3 512->512", 4, 512, 512, 3, 1, 1), ("3x3 256->256", 4, 256, 256, 3, 1, 1),
    ("3x3 256->256", 8, 256, 256, 3, 1, 1), ("3x3 /2 256->512", 4, 256, 512, 3, 2, 1),
    ("3x3 /2 128->256", 8, 128, 256, 3, 2, 1), ("3x3 64->64", 16, 64, 64, 3, 1, 1),
    ("3x3 64->64", 32, 64, 64, 3, 1, 1), ("7x7 /2 stem 1->64", 128, 1, 64, 7, 2, 1),
    ("1x1 320->1280", 2, 320, 1280, 1, 1, 1), ("1x1 160->960", 2, 160, 960, 1, 1, 1),
    ("1x1 160->960", 4, 160, 960, 1, 1, 1), ("dw 3x3 960", 2, 960, 960, 3, 1, 960),
    ("dw 3x3 960", 4, 960, 960, 3, 1, 960), ("dw 3x3 576", 4, 576, 576, 3, 1, 576),
    ("dw 3x3 /2 576", 4, 576, 576, 3, 2, 576), ("dw 3x3 144", 16, 144, 144, 3, 1, 144),
    ("dw 3x3 144", 32, 144, 144, 3, 1, 144), ("dw 3x3 /2 96", 64, 96, 96, 3, 2, 96),
    ("dw 3x3 32", 64, 32, 32, 3, 1, 32),
]

# (input map, C_in, C_out) of stride-2 3x3 transposed convs: EDCGAN's generator
TRANSPOSE_SHAPES = [(4, 512, 256), (8, 256, 128), (16, 128, 64), (32, 64, 32), (32, 32, 1)]


def time_fn(fn, args, reps):
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(reps):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t)
  return float(np.median(times))


def main(argv=None):
  p = argparse.ArgumentParser()
  p.add_argument("--batch", type=int, default=32)
  p.add_argument("--reps", type=int, default=20)
  p.add_argument("--transpose", action="store_true",
                 help="time stride-2 transposed convs: lax.conv_transpose vs conv_transpose2d")
  args = p.parse_args(argv)
  if args.transpose:
    return transpose_table(args)
  print(f"conv_bench: jax {jax.__version__} on {jax.devices()[0].device_kind}, batch "
        f"{args.batch}, forward+backward, median of {args.reps}")
  print("| conv | input map | out map | xla (ms) | taps (ms) | im2col (ms) | xla GFLOP/s | "
        "taps GFLOP/s | auto picks |")
  print("|---|---|---|---:|---:|---:|---:|---:|---|")
  from defects_jax.models import layers  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  for label, s, cin, cout, k, stride, groups in SHAPES:
    x = jnp.asarray(rng.standard_normal((args.batch, s, s, cin)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((k, k, cin // groups, cout)) * 0.05, jnp.float32)
    out_s = (s + 2 * (k // 2) - k) // stride + 1
    flops = 2 * args.batch * out_s * out_s * k * k * cin // groups * cout * 3
    res = {}
    for lowering in ("xla", "taps") + (("im2col",) if groups == 1 else ()):
      f = jax.jit(jax.value_and_grad(
          lambda x, w, lowering=lowering: jnp.sum(conv2d(
              x, w, strides=stride, padding=k // 2, feature_group_count=groups,
              lowering=lowering) ** 2), argnums=(0, 1)))
      res[lowering] = time_fn(f, (x, w), args.reps)
    im2col = f"{1e3 * res['im2col']:.2f}" if "im2col" in res else "-"
    auto = layers.choose_lowering((out_s, out_s), (k, k), groups, cin)
    print(f"| {label} | {s}x{s} | {out_s}x{out_s} | {1e3 * res['xla']:.2f} | "
          f"{1e3 * res['taps']:.2f} | {im2col} | {flops / res['xla'] / 1e9:.0f} | "
          f"{flops / res['taps'] / 1e9:.0f} | {auto} |")


def transpose_table(args):
  from defects_jax.models import layers  # pylint: disable=g-import-not-at-top
  print(f"conv_bench --transpose: jax {jax.__version__} on {jax.devices()[0].device_kind}, "
        f"batch {args.batch}, 3x3 stride 2 SAME, forward+backward, median of {args.reps}")
  print("| transposed conv | input map | out map | lax.conv_transpose (ms) | "
        "conv_transpose2d (ms) | speed-up | inner conv lowering |")
  print("|---|---|---|---:|---:|---:|---|")
  rng = np.random.default_rng(0)
  for s, cin, cout in TRANSPOSE_SHAPES:
    x = jnp.asarray(rng.standard_normal((args.batch, s, s, cin)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((3, 3, cin, cout)) * 0.05, jnp.float32)
    fns = {
        "lax": lambda x, w: jax.lax.conv_transpose(x, w, (2, 2), "SAME",
                                                   dimension_numbers=("NHWC", "HWIO", "NHWC")),
        "ours": lambda x, w: layers.conv_transpose2d(x, w, strides=2, padding="SAME"),
    }
    res = {}
    for name, fn in fns.items():
      f = jax.jit(jax.value_and_grad(lambda x, w, fn=fn: jnp.sum(fn(x, w) ** 2),
                                     argnums=(0, 1)))
      res[name] = time_fn(f, (x, w), args.reps)
    # the inner conv: a 2x2 window (phases of a 3x3 kernel at stride 2), 4 * C_out outputs
    inner = layers.choose_lowering((s, s), (2, 2), 1, cin)
    print(f"| 3x3 /2 {cin}->{cout} | {s}x{s} | {2 * s}x{2 * s} | {1e3 * res['lax']:.2f} | "
          f"{1e3 * res['ours']:.2f} | {res['lax'] / res['ours']:.1f}x | {inner} |")


if __name__ == "__main__":
  main()
