"""A tour of the defects-jax loss library: every loss, jitted, on small seeded inputs.

Run:
  defects-jax losses-tour
  python -m defects_jax.experiments.losses_tour [--seed 0] [--batch 8]

Runs on CPU in a few seconds (most of it XLA compilation). For each public loss
it builds one pure function of arrays in the shape the papers use (NHWC images,
[B] scores, [B, K] logits, [N, D] embeddings), jits it, evaluates it and its
gradient with respect to its first array argument, and prints a table:
the loss, the paper and equation, the value and the gradient's L2 norm. Every
input comes from one root key with named splits, so the table is reproducible.
It is an example script, not an experiment (no run folder).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from defects_jax import losses


def _critic(x):
  """A fixed, per-sample critic on NHWC images: tanh of a linear score."""
  flat = jnp.reshape(x, (x.shape[0], -1))
  return jnp.tanh(flat @ jnp.linspace(-0.05, 0.05, flat.shape[1]))


def build_cases(key: jax.Array, batch: int):
  """Returns [(name, reference, fn, args)]: ``fn(*args)`` is a float32 scalar."""
  names = ["real", "fake", "scores_r", "scores_f", "cls_r", "cls_f", "lab_r", "lab_f",
           "d1r", "d1f", "d2r", "d2f", "heat", "emb_s", "emb_t", "gp", "conf", "feat"]
  k = dict(zip(names, jax.random.split(key, len(names))))
  b, n_cls = batch, 6  # six NEU-CLS classes
  real = jax.random.uniform(k["real"], (b, 16, 16, 1), minval=-1, maxval=1)
  fake = jax.random.uniform(k["fake"], (b, 16, 16, 1), minval=-1, maxval=1)
  s_r, s_f = jax.random.normal(k["scores_r"], (b,)), jax.random.normal(k["scores_f"], (b,))
  c_r, c_f = jax.random.normal(k["cls_r"], (b, n_cls)), jax.random.normal(k["cls_f"], (b, n_cls))
  y_r = jax.random.randint(k["lab_r"], (b,), 0, n_cls)
  y_f = jax.random.randint(k["lab_f"], (b,), 0, n_cls)
  d1r, d1f = jax.random.normal(k["d1r"], (b,)), jax.random.normal(k["d1f"], (b,))
  d2r, d2f = jax.random.normal(k["d2r"], (b,)), jax.random.normal(k["d2f"], (b,))
  heat = jax.nn.sigmoid(jax.random.normal(k["heat"], (b, 8, 8)) - 1.0)
  defective = jnp.arange(b) % 2  # alternate positive / negative as Algorithm 1
  emb_s, emb_t = jax.random.normal(k["emb_s"], (b, 32)), jax.random.normal(k["emb_t"], (b, 64))
  conf = jax.random.randint(k["conf"], (n_cls, n_cls), 0, 5) + 20 * jnp.eye(n_cls, dtype=jnp.int32)
  weights = losses.gmean_class_weights(conf, imbalance_ratio=5.0)
  feat = jax.random.normal(k["feat"], (b, 8, 8, 16))
  tau = jnp.full((16,), 0.5)

  return [
      ("cross_entropy", "res-acgan eq. 11 (R)", lambda z: losses.cross_entropy(z, y_r), (c_r,)),
      ("binary_cross_entropy", "weak-sup. III.B (DNet)",
       lambda h: losses.binary_cross_entropy(h, defective), (s_r,)),
      ("wgan_critic_loss", "res-acgan eq. 10", losses.wgan_critic_loss, (s_r, s_f)),
      ("wgan_generator_loss", "res-acgan eq. 13", losses.wgan_generator_loss, (s_f,)),
      ("wasserstein_div_penalty", "res-acgan eq. 9-10",
       lambda r, f: losses.wasserstein_div_penalty(_critic, r, f, k["gp"], k=2.0, p=6.0),
       (real, fake)),
      ("gradient_penalty", "WGAN-GP eq. 3",
       lambda r, f: losses.gradient_penalty(_critic, r, f, k["gp"]), (real, fake)),
      ("bce_discriminator_loss", "GAN eq. 1 / edcgan", losses.bce_discriminator_loss, (s_r, s_f)),
      ("bce_generator_loss", "GAN sec. 3 (-log D)", losses.bce_generator_loss, (s_f,)),
      ("lsgan_discriminator_loss", "LSGAN eq. 2", losses.lsgan_discriminator_loss, (s_r, s_f)),
      ("lsgan_generator_loss", "LSGAN eq. 2", losses.lsgan_generator_loss, (s_f,)),
      ("acgan_class_loss", "res-acgan eq. 11",
       lambda a, c: losses.acgan_class_loss(a, y_r, c, y_f), (c_r, c_f)),
      ("d2gan_discriminator_loss", "D2GAN eq. 2", losses.d2gan_discriminator_loss,
       (d1r, d1f, d2r, d2f)),
      ("d2gan_generator_loss", "D2GAN eq. 2", losses.d2gan_generator_loss, (d1f, d2f)),
      ("jensen_shannon_estimate", "dg2gan eq. 2 (DJS)", losses.jensen_shannon_estimate,
       (d2f, d2r)),
      ("dg2_d1_loss", "dg2gan eq. 3", losses.dg2_d1_loss, (d1r, d1f)),
      ("dg2_d2_loss", "dg2gan eq. 2, 4", lambda r, f: losses.dg2_d2_loss(r, f, mu=0.05),
       (d2r, d2f)),
      ("dg2_generator_loss", "dg2gan eq. 5", losses.dg2_generator_loss, (d1f, d2f)),
      ("cycle_consistency_loss", "dg2gan eq. 1", losses.cycle_consistency_loss, (real, fake)),
      ("identity_loss", "CycleGAN sec. 5.2", losses.identity_loss, (real, fake)),
      ("weak_supervision_loss (mean)", "weak-sup. eq. 3-5",
       lambda h: jnp.mean(losses.weak_supervision_loss(
           h, defective, alpha=losses.collaborative_alpha(0))), (heat,)),
      ("rkd_distance_loss", "rkd-sarsn eq. 20", losses.rkd_distance_loss, (emb_s, emb_t)),
      ("rkd_angle_loss", "rkd-sarsn eq. 20", losses.rkd_angle_loss, (emb_s, emb_t)),
      ("rkd_loss", "rkd-sarsn eq. 20", losses.rkd_loss, (emb_s, emb_t)),
      ("kd_loss", "rkd-sarsn eq. 18", losses.kd_loss, (c_r, c_f)),
      ("gmean_class_weights (sum)", "rkd-sarsn eq. 12-15",
       lambda c: jnp.sum(losses.gmean_class_weights(c, imbalance_ratio=5.0)),
       (conf.astype(jnp.float32),)),
      ("self_adaptive_loss", "rkd-sarsn eq. 16-17",
       lambda z: losses.self_adaptive_loss(z, y_r, weights), (c_r,)),
      ("soft_threshold (sum)", "rkd-sarsn eq. 8",
       lambda x: jnp.sum(losses.soft_threshold(x, tau)), (feat,)),
      ("saddt (sum)", "rkd-sarsn eq. 10",
       lambda x: jnp.sum(losses.saddt(x, tau, 1.5)), (feat,)),
  ]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--seed", type=int, default=0, help="root PRNG seed")
  parser.add_argument("--batch", type=int, default=8, help="batch size B (>= 2)")
  args = parser.parse_args(argv)
  if args.batch < 2:
    parser.error("--batch must be >= 2 (pairwise losses need two samples)")

  start = time.perf_counter()
  cases = build_cases(jax.random.key(args.seed), args.batch)
  print(f"defects-jax loss tour: jax {jax.__version__} on {jax.devices()[0].platform}, "
        f"seed {args.seed}, batch {args.batch}\n")
  header = f"| {'loss':<30} | {'paper, equation':<22} | {'value':>12} | {'grad norm':>12} |"
  print(header)
  print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
  bad = []
  for name, ref, fn, fn_args in cases:
    value, grad = jax.jit(jax.value_and_grad(fn))(*fn_args)
    gnorm = jnp.sqrt(jnp.sum(grad.astype(jnp.float32) ** 2))
    if not (jnp.isfinite(value) and jnp.isfinite(gnorm)):
      bad.append(name)
    print(f"| {name:<30} | {ref:<22} | {float(value):>12.5f} | {float(gnorm):>12.5f} |")
  alphas = jax.jit(jax.vmap(losses.collaborative_alpha))(jnp.arange(0, 750, 30))
  print(f"\ncollaborative_alpha (weak-sup. eq. 6) at steps 0, 30, ..., 720:\n"
        f"  {' '.join(f'{a:.2f}' for a in alphas.tolist())}")
  print(f"\n{len(cases)} losses jitted and differentiated in "
        f"{time.perf_counter() - start:.1f} s")
  if bad:
    raise SystemExit(f"non-finite value or gradient: {', '.join(bad)}")


if __name__ == "__main__":
  main()
