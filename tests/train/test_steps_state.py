"""Tests of TrainState, freezing, schedules and the pure steps."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import flax.linen as nn

from defects_jax import losses
from defects_jax import models
from defects_jax import train
from defects_jax.train import schedules


class MLP(nn.Module):
  features: int

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    return nn.Dense(self.features)(nn.tanh(nn.Dense(8)(x)))


def mlp_state(features, in_dim, lr=1e-2, seed=0):
  m = MLP(features)
  v = m.init(jax.random.key(seed), jnp.zeros((1, in_dim)))
  return train.TrainState.create(apply_fn=m.apply, variables=v, tx=optax.adam(lr))


def test_schedules_values():
  s = schedules.step_decay(0.01, boundaries=[600])
  assert float(s(599)) == pytest.approx(0.01) and float(s(600)) == pytest.approx(0.001)
  s = schedules.linear_decay_after(2e-4, constant_steps=100, decay_steps=100)
  assert float(s(50)) == pytest.approx(2e-4) and float(s(150)) == pytest.approx(1e-4)
  assert float(s(200)) == pytest.approx(0.0)
  assert float(schedules.constant(3e-4)(12345)) == pytest.approx(3e-4)


def test_freeze_gives_zero_updates_to_frozen_params():
  m = models.SmallCNN(num_classes=3, widths=(4,))
  v = m.init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)), train=False)
  tx = train.freeze(optax.sgd(0.1), v["params"], lambda path: path[0] == "Dense_0")
  st = train.TrainState.create(apply_fn=m.apply, variables=v, tx=tx)
  batch = {"image": jnp.ones((4, 8, 8, 1)), "label": jnp.array([0, 1, 2, 0])}
  new, _ = train.classifier_train_step(st, batch, jax.random.key(1))
  changed = jax.tree_util.tree_map(lambda a, b: bool(jnp.any(a != b)), st.params, new.params)
  assert changed["Dense_0"]["kernel"] and changed["Dense_0"]["bias"]
  assert not any(jax.tree_util.tree_leaves(changed["ConvBN_0"]))


def test_classifier_step_learns_a_fixed_batch_and_updates_batch_stats():
  m = models.SmallCNN(num_classes=2, widths=(8,), dropout_rate=0.0)
  v = m.init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)), train=False)
  st = train.TrainState.create(apply_fn=m.apply, variables=v, tx=optax.adam(1e-2))
  x = jax.random.normal(jax.random.key(2), (8, 8, 8, 1))
  batch = {"image": x, "label": (x.mean((1, 2, 3)) > 0).astype(jnp.int32)}
  step = jax.jit(train.classifier_train_step)
  first = None
  for i in range(30):
    st, metrics = step(st, batch, jax.random.fold_in(jax.random.key(0), i))
    first = first if first is not None else float(metrics["loss"])
  assert float(metrics["loss"]) < 0.5 * first and int(st.step) == 30
  assert any(bool(jnp.any(a != b)) for a, b in zip(jax.tree_util.tree_leaves(st.batch_stats),
                                                   jax.tree_util.tree_leaves(v["batch_stats"])))
  logits = jax.jit(train.classifier_eval_step)(st, batch)
  assert logits.shape == (8, 2) and logits.dtype == jnp.float32


@pytest.mark.parametrize("m", [1, 3])
def test_adversarial_step_counts_updates_with_wdiv_penalty(m):
  """m critic updates and one generator update per call, in one jit, with a
  gradient penalty that differentiates the critic w.r.t. its input."""
  state = {"generator": mlp_state(4, 2, seed=0), "critic": mlp_state(1, 4, seed=1)}

  def generate(params, st, key, n):
    z = jax.random.normal(key, (n, 2))
    return st["generator"].apply_fn({"params": params}, z)

  def critic_loss(critic_params, st, batch, key):
    k_z, k_pen = jax.random.split(key)
    fake = jax.lax.stop_gradient(generate(st["generator"].params, st, k_z, batch["x"].shape[0]))
    critic_fn = lambda u: st["critic"].apply_fn({"params": critic_params}, u)[:, 0]
    loss = losses.wgan_critic_loss(critic_fn(batch["x"]), critic_fn(fake))
    pen = losses.wasserstein_div_penalty(critic_fn, batch["x"], fake, k_pen)
    return loss + pen, (None, {"penalty": pen})

  def generator_loss(gen_params, st, batch, key):
    fake = generate(gen_params, st, key, batch["x"].shape[0])
    score = st["critic"].apply_fn({"params": st["critic"].params}, fake)[:, 0]
    return losses.wgan_generator_loss(score), (None, {})

  step = jax.jit(train.make_adversarial_step(critic_loss=critic_loss,
                                             generator_loss=generator_loss,
                                             num_critic_steps=m))
  batch = {"x": jax.random.normal(jax.random.key(3), (6 * m, 4)) + 2.0}
  for i in range(2):
    state, metrics = step(state, batch, jax.random.fold_in(jax.random.key(9), i))
  assert int(state["critic"].step) == 2 * m
  assert int(state["generator"].step) == 2
  assert set(metrics) == {"critic/loss", "critic/penalty", "generator/loss"}
  assert all(np.isfinite(float(v)) for v in metrics.values())
  with pytest.raises(ValueError, match="not divisible"):
    train.make_adversarial_step(critic_loss=critic_loss, generator_loss=generator_loss,
                                num_critic_steps=4)(state, {"x": jnp.ones((6, 4))},
                                                    jax.random.key(0))


def test_stack_index_unstack_round_trip_and_vmap_a_step():
  m, tx = MLP(2), optax.adam(1e-2)  # one module and optimiser: equal static fields
  states = [train.TrainState.create(apply_fn=m.apply, tx=tx,
                                    variables=m.init(jax.random.key(s), jnp.zeros((1, 3))))
            for s in range(3)]
  stacked = train.stack(states)
  assert train.stack_size(stacked) == 3
  assert stacked.params["Dense_1"]["kernel"].shape == (3, 3, 8)
  assert stacked.apply_fn is states[0].apply_fn  # static fields stay static
  for s, back in zip(states, train.unstack(stacked)):
    jax.tree.map(np.testing.assert_array_equal, s, back)
  jax.tree.map(np.testing.assert_array_equal, train.index(stacked, -1), states[2])
  # a vmapped step over the stack == the step on each state
  step = train.classifier_train_step
  batch = {"image": jnp.ones((3, 4, 3)), "label": jnp.zeros((3, 4), jnp.int32)}
  keys = jax.random.split(jax.random.key(0), 3)
  new, _ = jax.jit(jax.vmap(step))(stacked, batch, keys)
  for i, s in enumerate(states):
    one, _ = step(s, {"image": batch["image"][i], "label": batch["label"][i]}, keys[i])
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6),
                 train.index(new, i), one)


def test_stack_refuses_empty_and_mismatched_pytrees():
  with pytest.raises(ValueError, match="at least one"):
    train.stack([])
  with pytest.raises(ValueError, match="pytree 1 differs"):
    train.stack([mlp_state(2, 3), mlp_state(3, 3)])
  with pytest.raises(ValueError, match="pytree 1 differs"):
    train.stack([{"a": jnp.ones(2)}, {"b": jnp.ones(2)}])
  with pytest.raises(IndexError, match="out of range for a stack of 2"):
    train.index(train.stack([{"a": jnp.ones(2)}] * 2), 2)
