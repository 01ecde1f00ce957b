"""Pure train steps ``(state, batch, key) -> (state, metrics)``.

Steps are plain functions; the loop jits them once with the state donated.
Randomness comes only from ``key`` (the loop passes ``fold_in(root, step)``)
through named splits.

* :func:`classifier_train_step` / :func:`classifier_eval_step`: softmax
  classifiers (flax modules called as ``apply(variables, x, train=...)``).
* :func:`make_adversarial_step`: m critic updates (``lax.scan`` over m
  micro-batches) then one generator update, all in one function; the loss
  functions may differentiate the critic with respect to its input (gradient
  penalties), since each is an ordinary JAX function of the parameters.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from defects_jax.losses import cross_entropy
from defects_jax.train.state import TrainState

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


def apply_model(state: TrainState, params, x: jax.Array, *, train: bool,
                dropout_key: jax.Array | None = None):
  """Calls ``state.apply_fn`` with the right collections.

  Returns ``(outputs, new_batch_stats)``; ``new_batch_stats`` is the state's
  own when not training or when the model has no BatchNorm.
  """
  variables = {"params": params}
  if state.batch_stats:
    variables["batch_stats"] = state.batch_stats
  rngs = {"dropout": dropout_key} if dropout_key is not None else None
  if train and state.batch_stats:
    out, updates = state.apply_fn(variables, x, train=True, rngs=rngs, mutable=["batch_stats"])
    return out, updates["batch_stats"]
  return state.apply_fn(variables, x, train=train, rngs=rngs), state.batch_stats


def classifier_train_step(state: TrainState, batch: Batch, key: jax.Array, *,
                          loss_fn: Callable[[jax.Array, jax.Array], jax.Array] = cross_entropy
                          ) -> tuple[TrainState, Metrics]:
  """One optimiser step of a classifier on ``batch["image"]``, ``batch["label"]``.

  Args:
    state: the classifier's TrainState.
    batch: ``image`` float[B, H, W, C], ``label`` int[B].
    key: this step's key (dropout).
    loss_fn: ``(logits, labels) -> scalar`` (e.g. a closure over
      :func:`defects_jax.losses.self_adaptive_loss`).

  Returns:
    (new state, ``{"loss", "accuracy"}`` float32 scalars).
  """
  (k_dropout,) = jax.random.split(key, 1)

  def objective(params):
    logits, new_stats = apply_model(state, params, batch["image"], train=True,
                                    dropout_key=k_dropout)
    return loss_fn(logits, batch["label"]), (logits, new_stats)

  (loss, (logits, new_stats)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
  state = state.apply_gradients(grads, batch_stats=new_stats)
  acc = jnp.mean((jnp.argmax(logits, -1) == batch["label"]).astype(jnp.float32))
  return state, {"loss": loss, "accuracy": acc}


def classifier_eval_step(state: TrainState, batch: Batch) -> jax.Array:
  """Logits float32[B, K] in inference mode (running BatchNorm statistics)."""
  logits, _ = apply_model(state, state.params, batch["image"], train=False)
  return logits.astype(jnp.float32)


# --------------------------------------------------------------------------
# Adversarial pattern
# --------------------------------------------------------------------------

# loss(params_of_the_updated_network, full_state, batch, key)
#   -> (loss, (new_batch_stats_of_that_network_or_None, metrics))
AdversarialLoss = Callable[[Any, dict, Batch, jax.Array],
                           tuple[jax.Array, tuple[Any, Metrics]]]


def _split_micro_batches(batch: Batch, m: int) -> Batch:
  def split(x):
    if x.shape[0] % m:
      raise ValueError(f"batch size {x.shape[0]} is not divisible by {m} critic steps")
    return x.reshape((m, x.shape[0] // m) + x.shape[1:])
  return jax.tree_util.tree_map(split, batch)


def make_adversarial_step(*, critic_loss: AdversarialLoss, generator_loss: AdversarialLoss,
                          num_critic_steps: int, critic: str = "critic",
                          generator: str = "generator", unroll: bool = True):
  """Builds ``step(state, batch, key) -> (state, metrics)`` for a two-player GAN.

  ``state`` is a dict with TrainStates under ``critic`` and ``generator`` (and
  anything else the losses need). The batch is cut into ``num_critic_steps``
  micro-batches along axis 0; the critic takes one update per micro-batch
  (``lax.scan``), then the generator one update on the whole batch, against
  the updated critic. Each loss gets the parameters of the network it updates
  (differentiated) and the full current state (constant).

  Metrics: the critic's from its last update (prefixed ``critic/``) and the
  generator's (prefixed ``generator/``). ``state[critic].step`` counts critic
  updates (m per call), ``state[generator].step`` generator updates.

  Keys: ``key`` is split into one key per critic update and one for the
  generator; none is reused.

  ``unroll`` (default) unrolls the scan over critic updates. XLA:CPU runs a
  loop body several times slower than the same ops outside a loop (measured on
  the res_acgan smoke step: 512 ms rolled vs 149 ms written out, m = 1; see
  bench/RESULTS.md); unrolled, compile time grows with m instead.
  """
  m = int(num_critic_steps)
  if m < 1:
    raise ValueError(f"num_critic_steps must be >= 1, got {m}")

  def step(state: dict, batch: Batch, key: jax.Array):
    k_critic, k_generator = jax.random.split(key)
    micro = _split_micro_batches(batch, m)
    critic_keys = jax.random.split(k_critic, m)

    def critic_update(st, xs):
      micro_batch, k = xs
      grad_fn = jax.value_and_grad(critic_loss, has_aux=True)
      (loss, (new_stats, metrics)), grads = grad_fn(st[critic].params, st, micro_batch, k)
      net = st[critic].apply_gradients(grads, batch_stats=new_stats)
      return {**st, critic: net}, {"loss": loss, **metrics}

    state, critic_metrics = jax.lax.scan(critic_update, state, (micro, critic_keys),
                                         unroll=m if unroll else 1)
    grad_fn = jax.value_and_grad(generator_loss, has_aux=True)
    (g_loss, (g_stats, g_metrics)), g_grads = grad_fn(state[generator].params, state, batch,
                                                      k_generator)
    state = {**state, generator: state[generator].apply_gradients(g_grads, batch_stats=g_stats)}
    metrics = {f"critic/{k}": v[-1] for k, v in critic_metrics.items()}
    metrics.update({"generator/loss": g_loss, **{f"generator/{k}": v for k, v in g_metrics.items()}})
    return state, metrics

  return step
