"""Tests of the LNet/DNet weak detector and the weak_ksdd stage steps."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from defects_jax import data
from defects_jax import losses
from defects_jax import models
from defects_jax.models.weak_detector import SharedLayers
from experiments import weak_ksdd as W


def test_heatmap_is_one_eighth_and_logit_per_image():
  m = models.WeakDetector(lnet_wide=16, dnet_hidden=8)
  # Jitted: on CPU the 15x15 layer is 225 slices (im2col), slow op by op.
  v = jax.jit(lambda k: m.init(k, jnp.zeros((1, 64, 128, 1)), train=False))(jax.random.key(0))
  heat, logit = jax.jit(lambda v, x: m.apply(v, x, train=False))(
      v, jax.random.uniform(jax.random.key(1), (3, 64, 128, 1)))
  assert heat.shape == (3, 8, 16) and logit.shape == (3,)
  assert float(heat.min()) >= 0.0 and float(heat.max()) <= 1.0
  assert set(v["params"]) == {"shared", "lnet", "dnet"}


@pytest.mark.parametrize("frozen", [True, False])
def test_frozen_backbone_gets_no_gradient(tiny, frozen):
  cfg, _, _, model, variables, pairs, _, _ = tiny
  x = pairs[0]["image"]

  def loss(params):
    (heat, logit), _ = model.apply({"params": params, "batch_stats": variables["batch_stats"]},
                                   x, train=True, frozen_backbone=frozen,
                                   mutable=["batch_stats"])
    return jnp.sum(logit) + jnp.sum(heat)
  grads = jax.jit(jax.grad(loss))(variables["params"])
  for part in ("shared", "lnet"):
    norms = [float(jnp.abs(g).sum()) for g in jax.tree_util.tree_leaves(grads[part])]
    assert (max(norms) == 0.0) if frozen else (max(norms) > 0.0), part
  assert max(float(jnp.abs(g).sum()) for g in jax.tree_util.tree_leaves(grads["dnet"])) > 0


def test_shared_layers_and_lnet_use_reflect_padding():
  """A constant image stays spatially constant through reflect-padded convs
  (zero padding would make the borders differ from the interior)."""
  m = SharedLayers()
  x = jnp.full((1, 64, 64, 1), 0.7)
  v = jax.jit(lambda k: m.init(k, x, train=False))(jax.random.key(0))
  f = jax.jit(lambda v: m.apply(v, x, train=False))(v)
  assert f.shape == (1, 8, 8, 128)
  np.testing.assert_allclose(f, jnp.broadcast_to(f[:, :1, :1], f.shape), rtol=1e-5, atol=1e-6)
  det = models.WeakDetector(lnet_wide=16, dnet_hidden=8)
  vd = jax.jit(lambda k: det.init(k, x, train=False))(jax.random.key(0))
  heat = jax.jit(lambda v: det.apply(v, x, train=False, method=models.WeakDetector.heatmap))(vd)
  np.testing.assert_allclose(heat, jnp.broadcast_to(heat[:, :1, :1], heat.shape), rtol=1e-5)


@pytest.fixture(scope="module")
def tiny():
  cfg = dataclasses.replace(W.get_config("smoke"), synthetic_images=36, stage1_iters=6,
                            alpha_every=2, stage2_iters=3, stage2_decay_at=2, stage3_iters=2,
                            lnet_wide=8, dnet_hidden=8)
  src = W.load_source(cfg)
  folds = data.kolektor_folds(src, num_folds=3, seed=0)
  model, variables = W.init_model(cfg, jax.random.key(0))
  pairs, test, split = W.fold_sources(cfg, src, folds, 0)
  return cfg, src, folds, model, variables, pairs, test, split


def _batches(pairs, n):
  return [{k: v[None] for k, v in pairs[i].items()} for i in range(n)]


@pytest.mark.parametrize("pair_batch", [True, False])
def test_stage1_alpha_follows_collaborative_alpha(tiny, pair_batch):
  cfg, _, _, model, variables, pairs, _, _ = tiny
  cfg = dataclasses.replace(cfg, pair_batch=pair_batch)
  tx1, _, _ = W.stage_txs(cfg, variables["params"])
  state = W.stage_state(model, variables, tx1)
  step = jax.jit(W.make_stage1_step(cfg))
  for i, batch in enumerate(_batches(pairs, cfg.stage1_iters)):
    state, m = step(state, batch, jax.random.key(i))
    expected = losses.collaborative_alpha(i, alpha_init=cfg.alpha_init,
                                          total_steps=cfg.stage1_iters,
                                          update_every=cfg.alpha_every)
    assert float(m["alpha"]) == pytest.approx(float(expected))
  assert int(state.step) == cfg.stage1_iters * (1 if pair_batch else 2)
  # Stage 1 trains shared + LNet only; DNet untouched.
  same = jax.tree_util.tree_map(lambda a, b: bool(jnp.array_equal(a, b)),
                                variables["params"]["dnet"], state.params["dnet"])
  assert all(jax.tree_util.tree_leaves(same))


def test_stage1_reports_mean_heat_of_positive_and_negative(tiny):
  """q_pos / q_neg are the weak loss's Q of the pair, before the update."""
  cfg, _, _, model, variables, pairs, _, _ = tiny
  tx1, _, _ = W.stage_txs(cfg, variables["params"])
  state = W.stage_state(model, variables, tx1)
  (batch,) = _batches(pairs, 1)
  _, m = jax.jit(W.make_stage1_step(cfg))(state, batch, jax.random.key(0))
  heat, _ = model.apply(variables, batch["image"][0], train=True, mutable=["batch_stats"],
                        method=models.WeakDetector.heatmap)
  np.testing.assert_allclose([m["q_pos"], m["q_neg"]], jnp.mean(heat, axis=(1, 2)), rtol=1e-5)
  weak = losses.weak_supervision_loss(heat, jnp.array([1.0, 0.0]), alpha=cfg.alpha_init)
  assert float(m["loss"]) == pytest.approx(float(jnp.mean(weak)), rel=1e-5)


def test_stage1_diagnosis_flags_a_collapsed_lnet():
  lines = [{"step": 25, "split": "train", "loss": -0.2, "q_pos": 0.4, "q_neg": 0.05},
           {"step": 50, "split": "train", "loss": -0.001, "q_pos": 0.004, "q_neg": 1e-4}]
  d = W.stage1_diagnosis(lines)
  assert d == {"Q+ end of stage 1": 0.004, "Q- end of stage 1": 1e-4, "LNet collapsed": "yes"}
  assert W.stage1_diagnosis(lines[:1])["LNet collapsed"] == "no"
  with pytest.raises(ValueError, match="no metric lines"):
    W.stage1_diagnosis([{"step": 50, "split": "eval", "loss": 0.1}])


def test_collapse_banner_only_when_a_fold_collapsed():
  cfg = W.get_config("cpu_small")
  ok, bad = {"LNet collapsed": "no"}, {"LNet collapsed": "yes"}
  assert W.collapse_banner(cfg, [ok, ok]) == []
  (banner,) = W.collapse_banner(dataclasses.replace(cfg, stage1_lr=0.1), [ok, bad, bad])
  assert banner.startswith("LNet collapsed in 2 of 3 folds") and "stage1_lr=0.01" in banner
  (banner,) = W.collapse_banner(dataclasses.replace(cfg, stage1_lr=0.01), [bad])
  assert "stage1_lr=0.01" not in banner


def test_stage2_leaves_frozen_params_and_stats_bit_identical(tiny):
  cfg, _, _, model, variables, pairs, _, _ = tiny
  _, tx2, _ = W.stage_txs(cfg, variables["params"])
  state = W.stage_state(model, variables, tx2)
  step = jax.jit(W.make_stage2_step(cfg))
  for i, batch in enumerate(_batches(pairs, 3)):
    state, _ = step(state, batch, jax.random.key(i))
  for part in ("shared", "lnet"):
    for coll, new in (("params", state.params), ("batch_stats", state.batch_stats)):
      for a, b in zip(jax.tree_util.tree_leaves(variables[coll][part]),
                      jax.tree_util.tree_leaves(new[part])):
        np.testing.assert_array_equal(a, b)
  changed = [not np.array_equal(a, b) for a, b in zip(
      jax.tree_util.tree_leaves(variables["params"]["dnet"]),
      jax.tree_util.tree_leaves(state.params["dnet"]))]
  assert any(changed)


def test_folds_partition_without_id_overlap(tiny):
  cfg, src, folds, *_ = tiny
  all_ids = [i for k in range(3) for i in folds[f"fold_{k}"]]
  assert sorted(all_ids) == sorted(src.ids)
  for k in range(3):
    split = data.kolektor_fold_split(folds, k)
    assert not set(split["train"]) & set(split["test"])
    assert len(split["train"]) + len(split["test"]) == len(src)


def test_pixel_ap_upsamples_heat_by_eight():
  heat = np.zeros((1, 2, 2))
  heat[0, 1, 1] = 1.0
  mask = np.zeros((1, 16, 16), np.uint8)
  mask[0, 8:, 8:] = 1
  ap, chance = W.pixel_ap(heat, mask)
  assert ap == pytest.approx(1.0) and chance == pytest.approx(0.25)
