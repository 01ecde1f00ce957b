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


# --------------------------------------------------------------------------
# Stacked states: K copies of one system along a leading axis, for vmap
# --------------------------------------------------------------------------


def stack(trees) -> Any:
  """K pytrees of the same structure (e.g. K TrainStates or dicts of them) ->
  one pytree whose array leaves have a leading axis K, ready for ``jax.vmap``
  over a train step. Static fields (``apply_fn``, ``tx``) must be equal.

  Raises:
    ValueError: no trees, or structures / static fields that differ.
  """
  trees = list(trees)
  if not trees:
    raise ValueError("stack needs at least one pytree")
  first = jax.tree_util.tree_structure(trees[0])
  for i, t in enumerate(trees[1:], 1):
    if jax.tree_util.tree_structure(t) != first:
      raise ValueError(f"stack: pytree {i} differs in structure (or static fields) from "
                       f"pytree 0")
  return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def stack_size(stacked) -> int:
  """K, the leading axis of a :func:`stack` ed pytree."""
  leaves = jax.tree_util.tree_leaves(stacked)
  if not leaves:
    raise ValueError("stack_size of a pytree without array leaves")
  return int(leaves[0].shape[0])


def index(stacked, i: int) -> Any:
  """The i-th pytree of a :func:`stack` ed pytree (0 <= i < K)."""
  k = stack_size(stacked)
  if not -k <= i < k:
    raise IndexError(f"index {i} out of range for a stack of {k}")
  return jax.tree_util.tree_map(lambda x: x[i], stacked)


def unstack(stacked) -> list:
  """The inverse of :func:`stack`: a list of K pytrees."""
  return [index(stacked, i) for i in range(stack_size(stacked))]
