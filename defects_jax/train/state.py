"""Train-state pytrees: one network's parameters, BatchNorm statistics and
optimiser state, plus helpers for several networks and for freezing.

A system with several networks (a GAN's generator and critic, CycleGAN's two
generators and four discriminators) keeps one :class:`TrainState` per network
in a dict or a ``flax.struct`` dataclass; the whole thing is one pytree that a
single jitted step takes and returns (and donates).
"""

from __future__ import annotations

from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
  """State of one network.

  Attributes:
    step: int32 scalar, number of optimiser updates applied.
    params: the ``params`` collection.
    batch_stats: the ``batch_stats`` collection (``{}`` for models without BN).
    opt_state: the optax state.
    apply_fn: the module's ``apply`` (static, not a pytree leaf).
    tx: the optax transformation (static).
  """

  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  apply_fn: Callable = flax.struct.field(pytree_node=False)
  tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)

  @classmethod
  def create(cls, *, apply_fn: Callable, variables: dict, tx: optax.GradientTransformation
             ) -> "TrainState":
    """From a module's ``init`` output: ``variables["params"]`` and, when
    present, ``variables["batch_stats"]``."""
    params = variables["params"]
    return cls(step=jnp.zeros((), jnp.int32), params=params,
               batch_stats=variables.get("batch_stats", {}), opt_state=tx.init(params),
               apply_fn=apply_fn, tx=tx)

  @property
  def variables(self) -> dict:
    """The collections ``apply`` needs: params (+ batch_stats when used)."""
    if self.batch_stats:
      return {"params": self.params, "batch_stats": self.batch_stats}
    return {"params": self.params}

  def apply_gradients(self, grads, *, batch_stats=None) -> "TrainState":
    """One optimiser update; optionally replaces the BatchNorm statistics."""
    updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
    return self.replace(step=self.step + 1, params=optax.apply_updates(self.params, updates),
                        opt_state=opt_state,
                        batch_stats=self.batch_stats if batch_stats is None else batch_stats)


def freeze(tx: optax.GradientTransformation, params, trainable: Callable[[tuple[str, ...]], bool]
           ) -> optax.GradientTransformation:
  """``tx`` for the parameters where ``trainable(path)`` is true, zero updates
  (and no optimiser state) elsewhere; ``path`` is the tuple of dict keys.

  Example: train only DNet, keeping the shared layers and LNet frozen::

    tx = freeze(optax.sgd(0.01), params, lambda path: path[0] == "dnet")
  """
  def label(path, _):
    keys = tuple(getattr(p, "key", getattr(p, "name", str(p))) for p in path)
    return "train" if trainable(keys) else "frozen"
  labels = jax.tree_util.tree_map_with_path(label, params)
  return optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()}, labels)


def count_params(params) -> int:
  """Total number of scalars in a parameter pytree."""
  return int(sum(x.size for x in jax.tree_util.tree_leaves(params)))
