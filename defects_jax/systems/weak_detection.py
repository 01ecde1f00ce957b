"""Weakly supervised defect localisation and decision (LNet + DNet from
image-level labels), as a system: model and optimisers from hyperparameters,
the three training stages as pure steps, inference (scores and heat maps) and
the collapse diagnosis. Paper: weakly-supervised-lnet-dnet; network in
:mod:`defects_jax.models.weak_detector`.

Use from your own code::

  from defects_jax.systems import weak_detection as WD
  hp = WD.Hyper(image_height=352, image_width=128, lnet_kernel=5)
  model, variables = WD.init_model(hp, jax.random.key(0))
  tx1, tx2, tx3 = WD.stage_txs(hp, variables["params"])
  state = WD.stage_state(model, variables, tx1)
  step = jax.jit(WD.make_stage1_step(hp), donate_argnums=0)
  # batch: image float32[1, 2, H, W, 1] (positive, negative), label int32[1, 2]
  state, metrics = step(state, batch, key)    # loss, q_pos, q_neg, alpha
  heat, logit = WD.forward(state, images)     # float32[B, H/8, W/8], float32[B]

Stages (section III.C, Algorithm 1); an iteration is one positive then one
negative image, each stage its own pure step:

1. shared layers + LNet, ``weak_supervision_loss`` with ``collaborative_alpha``
   (alpha_init 8, updated every 30 iterations, 750 iterations), SGD lr 0.1;
2. DNet only (shared + LNet frozen, their BatchNorm statistics fixed), binary
   cross-entropy, SGD lr 0.01 for 1200 iterations, x0.1 at 600;
3. everything, BCE + weak loss with alpha fixed at alpha_init, lr 0.001, 300
   iterations.

Deviation from Algorithm 1 (default ``pair_batch=True``): the paper alternates
batch-1 updates (positive, then negative). With BatchNorm, a batch of one image
is normalised by its own statistics, so global average pooling after BN gives
nearly the same vector for every image (DNet's loss stays at log 2) and the
network meets different statistics at inference (running averages). We update
on the positive and the negative together, a batch of 2, which keeps the
alternation of classes within every update; ``pair_batch=False`` restores the
literal two batch-1 updates per iteration (iteration counts and the alpha
schedule are per iteration either way).

Collapse (``stage1_diagnosis``): at initialisation every heat-map value is near
1/2, where the positive term of the weak loss has zero gradient (its minimum),
so the first update follows the negative term alone, alpha * -log(1 - Q), and
moves the 1x1 output conv over all 512 channels of the wide layer at once. On
KolektorSDD at 176x64 one SGD update at the paper's lr 0.1 took Q from about
0.5 to below 1e-5 on both images of the pair in all three folds; every
heat-map value then sits deep in the sigmoid's flat tail and stage 1 ends with
a map near 0 everywhere ("collapsed"). At lr 0.01 Q dips to about 0.05 and
recovers, as in the paper's Figure 6 (measurements:
experiments/results/weak_ksdd.md).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from defects_jax import data
from defects_jax import losses
from defects_jax import models
from defects_jax import train
from defects_jax.config import check
from defects_jax.config import field
from defects_jax.data import transforms as T

# Below this mean heat on the positive training image at the end of stage 1,
# LNet counts as collapsed: the weak loss wants Q = 1/2 on a positive, and a
# sigmoid map this close to 0 everywhere passes back gradients of order Q.
COLLAPSE_Q = 0.01


@dataclasses.dataclass(frozen=True)
class Hyper:
  """LNet/DNet hyperparameters and the three stages' schedules (fields marked
  ``paper=`` are the paper's setting)."""

  image_height: int = field(1408, paper="section IV.C: images resized to ~1408x512")
  image_width: int = field(512, paper="section IV.C: images resized to ~1408x512")
  lnet_wide: int = field(512, paper="Table 2: 15x15x512 layer")
  lnet_kernel: int = field(15, paper="Table 2: 15x15x512 layer")
  dnet_hidden: int = field(266, paper="section III.A: 266 hidden nodes")
  stage1_iters: int = field(750, paper="section IV.C: 750 iterations")
  stage1_lr: float = field(0.1, paper="section IV.C: SGD lr 0.1")
  alpha_init: float = field(8.0, paper="eq. 6: alpha_init 8")
  alpha_every: int = field(30, paper="eq. 6: alpha updated every 30 iterations")
  stage2_iters: int = field(1200, paper="section IV.C: 1200 iterations")
  stage2_lr: float = field(0.01, paper="section IV.C: lr 0.01")
  stage2_decay_at: int = field(600, paper="section IV.C: x0.1 at 600")
  stage3_iters: int = field(300, paper="section IV.C: 300 iterations")
  stage3_lr: float = field(0.001, paper="section IV.C: lr 0.001")
  freeze_in_stage2: bool = field(True, paper="Table 5: frozen shared layers + LNet in stage 2")
  # True: each iteration is one update on (positive, negative) as a batch of 2.
  # False: Algorithm 1 literally, two batch-1 updates (module docstring).
  pair_batch: bool = field(True, doc="one batch-2 update per iteration (False: Algorithm 1's "
                           "two batch-1 updates)")

  def validate(self) -> None:
    for name in ("image_height", "image_width"):
      v = getattr(self, name)
      check(v >= 64 and v % 8 == 0, name, f"must be a multiple of 8 and >= 64, got {v}")
    for name in ("lnet_wide", "lnet_kernel", "dnet_hidden", "alpha_every"):
      check(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)}")
    for name in ("stage1_iters", "stage2_iters", "stage3_iters", "stage2_decay_at"):
      check(getattr(self, name) >= 0, name, f"must be >= 0, got {getattr(self, name)}")
    for name in ("stage1_lr", "stage2_lr", "stage3_lr"):
      check(getattr(self, name) > 0, name, f"must be > 0, got {getattr(self, name)}")


# --------------------------------------------------------------------------
# Model, optimisers, state
# --------------------------------------------------------------------------


def init_model(hp: Hyper, key: jax.Array):
  """(WeakDetector module, its variables) at ``image_height`` x ``image_width``."""
  model = models.WeakDetector(lnet_wide=hp.lnet_wide, lnet_kernel=hp.lnet_kernel,
                              dnet_hidden=hp.dnet_hidden)
  variables = jax.jit(lambda k: model.init(k, jnp.zeros((1, hp.image_height, hp.image_width,
                                                         1)), train=False))(key)
  return model, variables


def stage_state(model, variables, tx) -> train.TrainState:
  """A stage's TrainState from the variables the previous stage left."""
  return train.TrainState.create(apply_fn=model.apply, variables=variables, tx=tx)


def updates_per_iteration(hp: Hyper) -> int:
  return 1 if hp.pair_batch else 2


def stage_txs(hp: Hyper, params):
  """The three stages' optimisers; learning-rate boundaries count updates."""
  backbone = lambda path: path[0] in ("shared", "lnet")
  tx1 = train.freeze(optax.sgd(hp.stage1_lr), params, backbone)
  lr2 = train.schedules.step_decay(
      hp.stage2_lr, boundaries=[updates_per_iteration(hp) * hp.stage2_decay_at])
  tx2 = (train.freeze(optax.sgd(lr2), params, lambda path: path[0] == "dnet")
         if hp.freeze_in_stage2 else optax.sgd(lr2))
  tx3 = optax.sgd(hp.stage3_lr)
  return tx1, tx2, tx3


# --------------------------------------------------------------------------
# Pure stage steps
# --------------------------------------------------------------------------


def _update(state, x, y, loss_of_outputs, *, heat_only: bool, frozen_backbone: bool = False):
  """One SGD update on images x [n, H, W, C] with labels y [n]."""
  def objective(params):
    variables = {"params": params, "batch_stats": state.batch_stats}
    if heat_only:
      heat, new = state.apply_fn(variables, x, train=True, mutable=["batch_stats"],
                                 method=models.WeakDetector.heatmap)
      logit = None
    else:
      (heat, logit), new = state.apply_fn(variables, x, train=True,
                                          frozen_backbone=frozen_backbone,
                                          mutable=["batch_stats"])
    q = jnp.mean(heat, axis=(1, 2))  # per-image mean heat (the weak loss's Q)
    return loss_of_outputs(heat, logit, y), (new["batch_stats"], q)
  (loss, (stats, q)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
  return state.apply_gradients(grads, batch_stats=stats), loss, q


def _iteration(state, batch, loss_of_outputs, hp: Hyper, **kw):
  """One iteration on (positive, negative): one batch-2 update, or two batch-1
  updates (positive first) when ``hp.pair_batch`` is False.

  Returns (state, metrics): the mean loss and ``q_pos`` / ``q_neg``, the mean
  heat of the positive and the negative image before the update (both near 0
  at once means LNet has collapsed, see ``stage1_diagnosis``)."""
  images, labels = batch["image"][0], batch["label"][0].astype(jnp.float32)
  if hp.pair_batch:
    state, loss, q = _update(state, images, labels, loss_of_outputs, **kw)
    return state, {"loss": loss, "q_pos": q[0], "q_neg": q[1]}
  state, l_pos, q_pos = _update(state, images[:1], labels[:1], loss_of_outputs, **kw)
  state, l_neg, q_neg = _update(state, images[1:], labels[1:], loss_of_outputs, **kw)
  return state, {"loss": (l_pos + l_neg) / 2, "q_pos": q_pos[0], "q_neg": q_neg[0]}


def make_stage1_step(hp: Hyper):
  """Shared + LNet on the weak loss, alpha = collaborative_alpha(iteration)."""
  per = updates_per_iteration(hp)

  def step(state, batch, key):
    del key  # deterministic stage (no dropout)
    alpha = losses.collaborative_alpha(state.step // per, alpha_init=hp.alpha_init,
                                       total_steps=hp.stage1_iters, update_every=hp.alpha_every)
    weak = lambda heat, _, y: jnp.mean(losses.weak_supervision_loss(heat, y, alpha=alpha))
    state, metrics = _iteration(state, batch, weak, hp, heat_only=True)
    return state, {**metrics, "alpha": alpha}
  return step


def make_stage2_step(hp: Hyper):
  """DNet on BCE; shared + LNet frozen (zero updates, inference-mode BN)."""
  def step(state, batch, key):
    del key
    bce = lambda _, logit, y: losses.binary_cross_entropy(logit, y)
    return _iteration(state, batch, bce, hp, heat_only=False,
                      frozen_backbone=hp.freeze_in_stage2)
  return step


def make_stage3_step(hp: Hyper):
  """Everything on BCE + weak loss with alpha fixed at alpha_init."""
  def step(state, batch, key):
    del key
    joint = lambda heat, logit, y: losses.binary_cross_entropy(logit, y) + jnp.mean(
        losses.weak_supervision_loss(heat, y, alpha=hp.alpha_init))
    return _iteration(state, batch, joint, hp, heat_only=False)
  return step


def make_stage_steps(hp: Hyper) -> dict:
  """``{"stage1": step, "stage2": step, "stage3": step}``."""
  return {"stage1": make_stage1_step(hp), "stage2": make_stage2_step(hp),
          "stage3": make_stage3_step(hp)}


def alpha_schedule(hp: Hyper) -> np.ndarray:
  """float32[stage1_iters]: alpha of every stage-1 iteration (eq. 6)."""
  steps = jnp.arange(hp.stage1_iters)
  return np.asarray(jax.vmap(lambda s: losses.collaborative_alpha(
      s, alpha_init=hp.alpha_init, total_steps=hp.stage1_iters,
      update_every=hp.alpha_every))(steps))


# --------------------------------------------------------------------------
# Inference
# --------------------------------------------------------------------------


@jax.jit
def forward(state: train.TrainState, images: jax.Array):
  """(heat float32[B, H/8, W/8] in [0, 1], logit float32[B]) in inference
  mode for images float32[B, H, W, 1] in [-1, 1]."""
  return state.apply_fn({"params": state.params, "batch_stats": state.batch_stats}, images,
                        train=False)


def predict(state: train.TrainState, source, hp: Hyper, *, batch_size: int = 4
            ) -> dict[str, np.ndarray]:
  """Over a whole source (records with ``image``, ``mask``, ``label``,
  ``id``), resized to the model's size: ``score`` (sigmoid of the logit)
  float32[N], ``heat`` float32[N, H/8, W/8], ``mask`` uint8[N, H, W],
  ``image`` float32[N, H, W, 1], ``id`` str[N], ``label`` int32[N]."""
  transforms = [T.Resize((hp.image_height, hp.image_width)), T.ToFloat()]

  def fn(batch):
    heat, logit = forward(state, jnp.asarray(batch["image"]))
    return {"score": np.asarray(jax.nn.sigmoid(logit)), "heat": np.asarray(heat)}
  return data.collect(source, batch_size=batch_size, transforms=transforms, fn=fn,
                      keep=("image", "mask", "label", "id"))


def stage1_diagnosis(lines: list[dict]) -> dict:
  """Mean heat of the positive (Q+) and negative (Q-) training images over the
  last logged window of stage 1, and whether LNet collapsed (Q+ < COLLAPSE_Q).

  The weak loss (eq. 3-5) is minimised by Q+ = 1/2 and Q- = 0. A collapsed
  LNet outputs ~0 everywhere on every image (the dip of the paper's Figure 6
  that did not recover): its heat map carries no location."""
  train_lines = [l for l in lines if l.get("split") == "train" and "q_pos" in l]
  if not train_lines:
    raise ValueError("stage 1 wrote no metric lines with q_pos (log_every > stage1_iters?)")
  last = train_lines[-1]
  return {"Q+ end of stage 1": last["q_pos"], "Q- end of stage 1": last["q_neg"],
          "LNet collapsed": "yes" if last["q_pos"] < COLLAPSE_Q else "no"}
