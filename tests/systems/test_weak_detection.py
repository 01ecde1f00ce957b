"""Tests of the weakly supervised system (defects_jax.systems.weak_detection):
the three stage steps, the collapse diagnosis, and the driver's helpers."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from defects_jax import data
from defects_jax import losses
from defects_jax import metrics
from defects_jax import models
from defects_jax.experiments import weak_ksdd as W
from defects_jax.systems import weak_detection as WD


@pytest.fixture(scope="module")
def tiny():
  cfg = dataclasses.replace(W.get_config("smoke"), synthetic_images=36, stage1_iters=6,
                            alpha_every=2, stage2_iters=3, stage2_decay_at=2, stage3_iters=2,
                            lnet_wide=8, dnet_hidden=8)
  src = W.load_source(cfg)
  folds = data.kolektor_folds(src, num_folds=3, seed=0)
  model, variables = WD.init_model(cfg, jax.random.key(0))
  raw_pairs, test = W.fold_sources(cfg, src, folds, 0)
  transforms = data.pair_transforms((cfg.image_height, cfg.image_width))
  pairs = []
  for i in range(len(raw_pairs)):
    rec = raw_pairs[i]
    for t in transforms:
      rec = t.map(rec)
    pairs.append(rec)
  return cfg, src, folds, model, variables, pairs, test, None


def _batches(pairs, n):
  return [{k: v[None] for k, v in pairs[i].items()} for i in range(n)]


def test_pair_items_stack_a_positive_and_a_negative(tiny):
  cfg, *_, pairs, _, _ = tiny
  rec = pairs[0]
  assert rec["image"].shape == (2, cfg.image_height, cfg.image_width, 1)
  assert rec["image"].dtype == np.float32 and -1.0 <= rec["image"].min() <= rec["image"].max() <= 1
  assert rec["mask"].shape == (2, cfg.image_height, cfg.image_width)
  np.testing.assert_array_equal(rec["label"], [1, 0])
  assert rec["mask"][0].any() and not rec["mask"][1].any()  # the positive has a defect


@pytest.mark.parametrize("pair_batch", [True, False])
def test_stage1_alpha_follows_collaborative_alpha(tiny, pair_batch):
  cfg, _, _, model, variables, pairs, _, _ = tiny
  cfg = dataclasses.replace(cfg, pair_batch=pair_batch)
  tx1, _, _ = WD.stage_txs(cfg, variables["params"])
  state = WD.stage_state(model, variables, tx1)
  step = jax.jit(WD.make_stage1_step(cfg))
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
  tx1, _, _ = WD.stage_txs(cfg, variables["params"])
  state = WD.stage_state(model, variables, tx1)
  (batch,) = _batches(pairs, 1)
  _, m = jax.jit(WD.make_stage1_step(cfg))(state, batch, jax.random.key(0))
  heat, _ = model.apply(variables, batch["image"][0], train=True, mutable=["batch_stats"],
                        method=models.WeakDetector.heatmap)
  np.testing.assert_allclose([m["q_pos"], m["q_neg"]], jnp.mean(heat, axis=(1, 2)), rtol=1e-5)
  weak = losses.weak_supervision_loss(heat, jnp.array([1.0, 0.0]), alpha=cfg.alpha_init)
  assert float(m["loss"]) == pytest.approx(float(jnp.mean(weak)), rel=1e-5)


def test_stage1_diagnosis_flags_a_collapsed_lnet():
  lines = [{"step": 25, "split": "train", "loss": -0.2, "q_pos": 0.4, "q_neg": 0.05},
           {"step": 50, "split": "train", "loss": -0.001, "q_pos": 0.004, "q_neg": 1e-4}]
  d = WD.stage1_diagnosis(lines)
  assert d == {"Q+ end of stage 1": 0.004, "Q- end of stage 1": 1e-4, "LNet collapsed": "yes"}
  assert WD.stage1_diagnosis(lines[:1])["LNet collapsed"] == "no"
  with pytest.raises(ValueError, match="no metric lines"):
    WD.stage1_diagnosis([{"step": 50, "split": "eval", "loss": 0.1}])


def test_stage2_leaves_frozen_params_and_stats_bit_identical(tiny):
  cfg, _, _, model, variables, pairs, _, _ = tiny
  _, tx2, _ = WD.stage_txs(cfg, variables["params"])
  state = WD.stage_state(model, variables, tx2)
  step = jax.jit(WD.make_stage2_step(cfg))
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
