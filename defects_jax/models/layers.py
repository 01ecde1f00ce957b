"""Shared building blocks (flax.linen, NHWC). Every model uses these, so one
change (e.g. a faster CPU convolution) reaches all of them."""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Padding = str | int | Sequence[tuple[int, int]]
LOWERINGS = ("auto", "xla", "taps", "im2col")
# Read at trace time: "xla", "taps" or "im2col" forces that lowering wherever "auto" is
# asked for (the benchmark's before/after switch); unset or "auto": the rule.
LOWERING_ENV = "DEFECTS_JAX_CONV_LOWERING"
# Output maps with at most this many positions use the shifted-matmul lowering
# on CPU (see conv2d; measured in bench/RESULTS.md).
CPU_TAPS_MAX_POSITIONS = 4
# Dense kernels with more taps than this (larger than 7x7) use one matmul over
# all taps on CPU (see conv2d; measured on LNet's 15x15 layer, bench/RESULTS.md).
CPU_IM2COL_MIN_TAPS = 50


def _pairs(v, n=2) -> tuple[int, ...]:
  return (int(v),) * n if isinstance(v, (int, np.integer)) else tuple(int(u) for u in v)


def _explicit_padding(padding: Padding, in_hw, kernel_hw, strides) -> list[tuple[int, int]]:
  if isinstance(padding, str):
    if padding.upper() not in ("SAME", "VALID"):
      raise ValueError(f"padding must be 'SAME', 'VALID', an int or pairs, got {padding!r}")
    return list(jax.lax.padtype_to_pads(in_hw, kernel_hw, strides, padding.upper()))
  if isinstance(padding, (int, np.integer)):
    return [(int(padding), int(padding))] * 2
  pads = [tuple(int(u) for u in p) for p in padding]
  if len(pads) != 2 or any(len(p) != 2 for p in pads):
    raise ValueError(f"explicit padding must be ((top, bottom), (left, right)), got {padding}")
  return pads


def choose_lowering(out_hw: tuple[int, int], kernel_hw: tuple[int, int], groups: int,
                    in_channels: int, backend: str | None = None) -> str:
  """The lowering ``conv2d(..., lowering="auto")`` picks, from static shapes.

  Measured with ``bench/conv_bench.py`` (table in bench/RESULTS.md; 2-core
  AVX-512 CPU, jax 0.10.2, batch 32, forward + backward):

  * dense convs: XLA:CPU runs at a few GFLOP/s when the output map is tiny (a
    3x3 conv 512->512 on 2x2 maps: 547 ms against 12 ms as nine shifted
    matmuls), while from 4x4 outputs up it reaches 170-200 GFLOP/s and beats
    the taps. So outputs with at most ``CPU_TAPS_MAX_POSITIONS`` positions take
    "taps".
  * depthwise convs: XLA:CPU's grouped convolution runs below 1 GFLOP/s at
    every size measured (2x2 to 64x64 maps), 3-50x slower than the per-tap
    elementwise products; so every depthwise conv takes "taps".
  * dense convs with large kernels (more than ``CPU_IM2COL_MIN_TAPS`` taps,
    i.e. larger than 7x7): "im2col". LNet's 15x15 conv 64->512 on a 44x16 map
    (batch 2, forward + backward, ``bench/weak_layer_bench.py``): 1014 ms with
    XLA's conv, 441 ms as one matmul over the 225 concatenated taps, 1432 ms
    as taps. At 7x7 and below im2col did not win (ResNet stem, 5x5 and 3x3
    layers in the same benches), so they keep the rules above. It holds the
    [B, H_out, W_out, kh*kw*C_in] patch matrix in memory.
  * other grouped convolutions, and every non-CPU backend: "xla".

  The environment variable ``DEFECTS_JAX_CONV_LOWERING`` ("xla", "taps" or
  "im2col"), read when a function is traced, overrides the rule.
  """
  forced = os.environ.get(LOWERING_ENV, "auto")
  if forced not in LOWERINGS:
    raise ValueError(f"{LOWERING_ENV}={forced!r}; expected one of {LOWERINGS}")
  if (forced == "xla" or (forced == "taps" and groups in (1, in_channels))
      or (forced == "im2col" and groups == 1)):
    return forced
  backend = backend or jax.default_backend()
  if backend != "cpu":
    return "xla"
  if groups not in (1, in_channels):
    return "xla"
  if groups > 1:  # depthwise
    return "taps"
  if out_hw[0] * out_hw[1] <= CPU_TAPS_MAX_POSITIONS:
    return "taps"
  if kernel_hw[0] * kernel_hw[1] >= CPU_IM2COL_MIN_TAPS:
    return "im2col"
  return "xla"


def conv2d(x: jax.Array, kernel: jax.Array, *, strides: int | Sequence[int] = 1,
           padding: Padding = "SAME", feature_group_count: int = 1,
           lowering: str = "auto", precision: Any = None) -> jax.Array:
  """2-D cross-correlation, NHWC x HWIO -> NHWC, with a choice of lowering.

  Equal in value and gradient to ``jax.lax.conv_general_dilated`` with the
  same arguments (to float32 rounding); the lowering only changes speed.

  Lowerings:
    * ``"xla"``: ``lax.conv_general_dilated``.
    * ``"taps"``: the sum over kernel taps (i, j) of a strided slice of the
      padded input times ``kernel[i, j]``: an einsum over channels per tap
      (dense), or an elementwise product per tap (depthwise). Fast on CPU when
      the output map is tiny, where XLA:CPU's convolution is slow.
    * ``"im2col"`` (dense only): the strided slices of all taps concatenated
      along channels, one matmul with the reshaped kernel. Fast on CPU for
      large kernels.
    * ``"auto"``: :func:`choose_lowering` from the static shapes.

  Args:
    x: float[B, H, W, C_in].
    kernel: float[kh, kw, C_in / groups, C_out].
    strides: int or (sh, sw).
    padding: "SAME", "VALID", an int (both sides, both axes; torch style) or
      ((top, bottom), (left, right)).
    feature_group_count: 1 (dense), C_in (depthwise, C_out a multiple of
      C_in), or another divisor of C_in (always "xla").
    lowering: "auto", "xla", "taps" or "im2col".
    precision: passed to the XLA conv / einsum.

  Returns:
    [B, H_out, W_out, C_out] in the promoted dtype of x and kernel.
  """
  if x.ndim != 4 or kernel.ndim != 4:
    raise ValueError(f"conv2d expects x [B, H, W, C] and kernel [kh, kw, C/g, O], got "
                     f"{x.shape} and {kernel.shape}")
  if lowering not in LOWERINGS:
    raise ValueError(f"lowering must be one of {LOWERINGS}, got {lowering!r}")
  strides = _pairs(strides)
  kh, kw, kin, cout = kernel.shape
  cin, groups = x.shape[-1], int(feature_group_count)
  if cin % groups or kin * groups != cin or cout % groups:
    raise ValueError(f"kernel {kernel.shape} does not fit input channels {cin} with "
                     f"feature_group_count={groups}")
  pads = _explicit_padding(padding, x.shape[1:3], (kh, kw), strides)
  out_hw = tuple((x.shape[1 + a] + sum(pads[a]) - (kh, kw)[a]) // strides[a] + 1
                 for a in range(2))
  if min(out_hw) < 1:
    raise ValueError(f"conv2d output would be empty: input {x.shape}, kernel {kernel.shape}, "
                     f"padding {pads}, strides {strides}")
  if lowering == "auto":
    lowering = choose_lowering(out_hw, (kh, kw), groups, cin)
  if (lowering == "taps" and groups not in (1, cin)) or (lowering == "im2col" and groups != 1):
    lowering = "xla"
  if lowering == "xla":
    return jax.lax.conv_general_dilated(
        x, kernel, strides, pads, dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=groups, precision=precision)
  xp = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
  b, (ho, wo), (sh, sw) = x.shape[0], out_hw, strides
  depthwise = groups == cin and groups > 1
  if depthwise and cout != cin:  # channel multiplier m: output channel c*m + r reads input c
    xp = jnp.repeat(xp, cout // cin, axis=-1)
  tap = lambda i, j: jax.lax.slice(xp, (0, i, j, 0), (b, i + (ho - 1) * sh + 1,
                                                     j + (wo - 1) * sw + 1, xp.shape[-1]),
                                   (1, sh, sw, 1))
  if lowering == "im2col":  # patches [B, Ho, Wo, kh*kw*C_in] in the kernel's (i, j, c) order
    cols = jnp.concatenate([tap(i, j) for i in range(kh) for j in range(kw)], axis=-1)
    return jnp.einsum("bhwk,kd->bhwd", cols, kernel.reshape(kh * kw * cin, cout),
                      precision=precision)
  out = None
  for i in range(kh):
    for j in range(kw):
      xs = tap(i, j)
      if depthwise:
        term = xs * kernel[i, j, 0]
      else:
        term = jnp.einsum("bhwc,cd->bhwd", xs, kernel[i, j], precision=precision)
      out = term if out is None else out + term
  return out


def _transpose_pads(k: int, s: int, padding: str) -> tuple[int, int]:
  """``lax.conv_transpose``'s padding of the dilated input for one axis."""
  if padding == "SAME":
    pad_len = k + s - 2
    pad_a = k - 1 if s > k - 1 else int(np.ceil(pad_len / 2))
  else:  # VALID
    pad_len = k + s - 2 + max(k - s, 0)
    pad_a = k - 1
  return pad_a, pad_len - pad_a


def _phase_taps(k: int, s: int, pad_a: int):
  """For one axis of a transposed conv (kernel k, stride s, dilated-input
  padding pad_a): for every output phase r in [0, s), the list of
  (input offset, kernel tap) pairs with y[s q + r] = sum x[q + offset] k[tap]."""
  phases = []
  for r in range(s):
    t0 = (pad_a - r) % s
    d = (r + t0 - pad_a) // s
    phases.append([(d + m, t) for m, t in enumerate(range(t0, k, s))])
  return phases


def conv_transpose2d(x: jax.Array, kernel: jax.Array, *, strides: int | Sequence[int] = 2,
                     padding: str = "SAME", lowering: str = "auto",
                     precision: Any = None) -> jax.Array:
  """Transposed ("fractionally strided") 2-D convolution, NHWC x HWIO -> NHWC.

  Equal in value and gradient to ``jax.lax.conv_transpose(x, kernel, strides,
  padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))`` (``transpose_kernel``
  False, as ``flax.linen.ConvTranspose``). Output size H * s ("SAME") or
  (H - 1) * s + max(k, s) ("VALID").

  Computed by sub-pixel decomposition: output pixel (s q + r) only meets the
  kernel taps of its phase r, so all s x s phases are one ordinary stride-1
  convolution *at the input resolution* with a [ceil-ish(k / s)]^2 kernel of
  s * s * C_out channels (built from ``kernel``), then a depth-to-space
  shuffle. That convolution goes through :func:`conv2d` with ``lowering``, so
  the CPU rule (:func:`choose_lowering`) reaches transposed convolutions too,
  and it skips the (s^2 - 1) / s^2 zeros a dilated input would multiply.
  XLA:CPU runs ``lax.conv_transpose`` (an lhs-dilated convolution) several
  times slower (bench/RESULTS.md, ``bench/conv_bench.py --transpose``).

  Args:
    x: float[B, H, W, C_in].
    kernel: float[kh, kw, C_in, C_out].
    strides: int or (sh, sw).
    padding: "SAME" or "VALID".
    lowering: of the inner convolution: "auto", "xla", "taps" or "im2col".
    precision: passed to XLA.

  Returns:
    [B, H_out, W_out, C_out].
  """
  if x.ndim != 4 or kernel.ndim != 4 or kernel.shape[2] != x.shape[-1]:
    raise ValueError(f"conv_transpose2d expects x [B, H, W, C] and kernel [kh, kw, C, O], "
                     f"got {x.shape} and {kernel.shape}")
  if not isinstance(padding, str) or padding.upper() not in ("SAME", "VALID"):
    raise ValueError(f"conv_transpose2d padding must be 'SAME' or 'VALID', got {padding!r}")
  if lowering not in LOWERINGS:
    raise ValueError(f"lowering must be one of {LOWERINGS}, got {lowering!r}")
  strides = _pairs(strides)
  (kh, kw, cin, cout), (b, h, w) = kernel.shape, x.shape[:3]
  out_hw, taps, windows, pads = [], [], [], []
  for a, (k, s, n) in enumerate(zip((kh, kw), strides, (h, w))):
    pad_a, pad_b = _transpose_pads(k, s, padding.upper())
    out = (n - 1) * s + 1 + pad_a + pad_b - k + 1
    phases = _phase_taps(k, s, pad_a)
    offsets = [o for ph in phases for o, _ in ph] or [0]
    lo, hi = min(offsets), max(offsets)
    q = -(-out // s)  # output rows per phase (the last phases may overhang; cropped below)
    out_hw.append(out)
    taps.append((phases, lo, hi - lo + 1))
    pads.append((max(0, -lo), max(0, q - 1 + hi - (n - 1))))
    windows.append(q)
  (ph_h, lo_h, win_h), (ph_w, lo_w, win_w) = taps
  sh, sw = strides
  # Phase kernel [win_h, win_w, C_in, sh, sw, C_out]: tap (i, j) of phase (rh, rw) at the
  # window position of its input offset.
  rows, cols, srcs = [], [], []
  for rh, tap_h in enumerate(ph_h):
    for rw, tap_w in enumerate(ph_w):
      for oh, th in tap_h:
        for ow, tw in tap_w:
          rows.append((oh - lo_h, ow - lo_w, rh, rw))
          srcs.append((th, tw))
  phase_kernel = jnp.zeros((win_h, win_w, cin, sh, sw, cout), kernel.dtype)
  if rows:
    ih, iw, irh, irw = (np.array(v) for v in zip(*rows))
    th, tw = (np.array(v) for v in zip(*srcs))
    phase_kernel = phase_kernel.at[ih, iw, :, irh, irw, :].set(kernel[th, tw])
  phase_kernel = phase_kernel.reshape(win_h, win_w, cin, sh * sw * cout)
  # Input rows q + lo + j (j < win) for q < Q: pad so every window is inside.
  top, left = pads[0][0], pads[1][0]
  crop_h0, crop_w0 = top + lo_h, left + lo_w  # >= 0 by construction
  xp = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
  xp = xp[:, crop_h0:crop_h0 + windows[0] + win_h - 1, crop_w0:crop_w0 + windows[1] + win_w - 1]
  y = conv2d(xp, phase_kernel, strides=1, padding="VALID", lowering=lowering,
             precision=precision)  # [B, Qh, Qw, sh * sw * C_out]
  y = y.reshape(b, windows[0], windows[1], sh, sw, cout).transpose(0, 1, 3, 2, 4, 5)
  y = y.reshape(b, windows[0] * sh, windows[1] * sw, cout)
  return y[:, :out_hw[0], :out_hw[1]]


class Conv(nn.Module):
  """``flax.linen.Conv`` for 2-D NHWC inputs, through :func:`conv2d` (so every
  model gets the CPU small-map lowering). Parameters ``kernel`` [kh, kw,
  C_in / groups, features] and ``bias`` [features], as ``nn.Conv``.

  Attributes:
    features: output channels.
    kernel_size: int or (kh, kw).
    strides: int or (sh, sw).
    padding: "SAME", "VALID", int (torch style, both sides) or explicit pairs.
    feature_group_count: groups (C_in for depthwise).
    use_bias: add a bias.
    lowering: see :func:`conv2d` ("auto" by default).
    kernel_init, bias_init: initialisers.
    dtype: computation dtype (None: promote inputs and params).
  """

  features: int
  kernel_size: int | Sequence[int] = 3
  strides: int | Sequence[int] = 1
  padding: Padding = "SAME"
  feature_group_count: int = 1
  use_bias: bool = True
  lowering: str = "auto"
  kernel_init: Callable = nn.initializers.lecun_normal()
  bias_init: Callable = nn.initializers.zeros_init()
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kh, kw = _pairs(self.kernel_size)
    cin = x.shape[-1]
    if cin % self.feature_group_count:
      raise ValueError(f"input channels {cin} not divisible by feature_group_count="
                       f"{self.feature_group_count}")
    kernel = self.param("kernel", self.kernel_init,
                        (kh, kw, cin // self.feature_group_count, self.features))
    if self.dtype is not None:
      x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
    y = conv2d(x, kernel, strides=self.strides, padding=self.padding,
               feature_group_count=self.feature_group_count, lowering=self.lowering)
    if self.use_bias:
      y = y + self.param("bias", self.bias_init, (self.features,)).astype(y.dtype)
    return y


class ConvTranspose(nn.Module):
  """``flax.linen.ConvTranspose`` for 2-D NHWC inputs through
  :func:`conv_transpose2d`. Parameters ``kernel`` [kh, kw, C_in, features] and
  ``bias`` [features], as ``nn.ConvTranspose`` (``transpose_kernel=False``).

  Attributes:
    features: output channels.
    kernel_size: int or (kh, kw).
    strides: int or (sh, sw) (2: double the map size with "SAME").
    padding: "SAME" or "VALID".
    use_bias: add a bias.
    lowering: see :func:`conv2d`.
    kernel_init, bias_init: initialisers.
  """

  features: int
  kernel_size: int | Sequence[int] = 3
  strides: int | Sequence[int] = 2
  padding: str = "SAME"
  use_bias: bool = True
  lowering: str = "auto"
  kernel_init: Callable = nn.initializers.lecun_normal()
  bias_init: Callable = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kh, kw = _pairs(self.kernel_size)
    kernel = self.param("kernel", self.kernel_init, (kh, kw, x.shape[-1], self.features))
    y = conv_transpose2d(x, kernel, strides=self.strides, padding=self.padding,
                         lowering=self.lowering)
    if self.use_bias:
      y = y + self.param("bias", self.bias_init, (self.features,)).astype(y.dtype)
    return y


# SELU's constants (Klambauer et al. 2017, eq. 14) and the value it saturates
# to for x -> -inf: alpha' = -lambda * alpha.
SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805
SELU_SATURATION = -SELU_SCALE * SELU_ALPHA


def alpha_dropout(x: jax.Array, rate: float, key: jax.Array, *,
                  saturation: float = SELU_SATURATION) -> jax.Array:
  r"""Alpha-dropout (Klambauer et al. 2017, section "New Dropout Technique").

  Each unit is kept with probability q = 1 - rate, otherwise set to the
  activation's saturation value alpha' (SELU: -lambda alpha = -1.7581); then
  the affine map a x + b restores the mean and variance of inputs with mean 0
  and variance 1 (the SELU fixed point):

  .. math:: a = \big(q + \alpha'^2 q (1 - q)\big)^{-1/2}, \quad b = -a (1 - q) \alpha',
     \quad y = a\,(x d + \alpha' (1 - d)) + b, \quad d \sim \mathrm{Bernoulli}(q).

  edcgan eqs. 6-8 state the same mean / variance conditions.

  Args:
    x: float[...] activations.
    rate: drop probability in [0, 1).
    key: PRNG key for the mask.
    saturation: alpha'.

  Returns:
    Same shape and dtype as x.
  """
  if not 0.0 <= rate < 1.0:
    raise ValueError(f"alpha_dropout rate must be in [0, 1), got {rate}")
  if rate == 0.0:
    return x
  q = 1.0 - rate
  a = (q + saturation ** 2 * q * (1.0 - q)) ** -0.5
  b = -a * (1.0 - q) * saturation
  keep = jax.random.bernoulli(key, q, x.shape)
  return (a * jnp.where(keep, x, saturation) + b).astype(x.dtype)


class AlphaDropout(nn.Module):
  """:func:`alpha_dropout` as a layer: the ``dropout`` rng when not
  ``deterministic``; the identity when ``deterministic`` (inference) or rate 0.

  Attributes:
    rate: drop probability in [0, 1).
    deterministic: default for ``__call__``'s argument.
  """

  rate: float
  deterministic: bool | None = None

  @nn.compact
  def __call__(self, x: jax.Array, deterministic: bool | None = None) -> jax.Array:
    deterministic = nn.merge_param("deterministic", self.deterministic, deterministic)
    if deterministic or self.rate == 0.0:
      return x
    return alpha_dropout(x, self.rate, self.make_rng("dropout"))


class ConvBN(nn.Module):
  """Conv -> BatchNorm -> activation.

  Attributes:
    features: output channels.
    kernel_size: square kernel size.
    strides: square stride.
    activation: applied after BN (None for identity).
    padding: flax padding ("SAME", "VALID", or explicit), or "REFLECT" for
      same-size output with mirrored borders (odd kernels; each spatial side
      must exceed kernel_size // 2).
  """

  features: int
  kernel_size: int = 3
  strides: int = 1
  activation: Callable[[jax.Array], jax.Array] | None = nn.relu
  padding: str = "SAME"

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    padding = self.padding
    if padding == "REFLECT":
      x = reflect_pad(x, self.kernel_size // 2)
      padding = "VALID"
    x = Conv(self.features, self.kernel_size, strides=self.strides, padding=padding,
             use_bias=False, name="Conv_0")(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
    return self.activation(x) if self.activation is not None else x


def reflect_pad(x: jax.Array, pad: int) -> jax.Array:
  """Mirror-pads the two spatial axes of NHWC ``x`` by ``pad`` (numpy "reflect")."""
  if pad == 0:
    return x
  if min(x.shape[1], x.shape[2]) <= pad:
    raise ValueError(f"reflect padding {pad} needs spatial size > {pad}, got {x.shape[1:3]}")
  return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


def max_pool_2x2(x: jax.Array) -> jax.Array:
  """2x2 max pooling with stride 2 (floor of odd sizes, as torch's default)."""
  return nn.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")


def global_avg_pool(x: jax.Array) -> jax.Array:
  """[B, H, W, C] -> [B, C]."""
  return jnp.mean(x, axis=(1, 2))
