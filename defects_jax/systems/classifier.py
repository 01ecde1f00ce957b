"""Image classifiers: the zoo backbones and the small CNN, their state, the
train step and inference, for the few-shot baselines and the quickstart.

Use from your own code::

  from defects_jax.systems import classifier as C
  model = C.make_model("resnet18", num_classes=6)
  state = C.make_state(model, optax.adam(1e-3), jax.random.key(0), image_size=64)
  step = jax.jit(C.train_step, donate_argnums=0)
  state, metrics = step(state, {"image": x, "label": y}, key)   # x float32[B, 64, 64, 1]
  probs = C.predict_proba(state, x)                              # float32[B, 6]

Everything here is a pure function of the state; inference functions are
jitted once at module level, and jit caches them per model (the state's
``apply_fn`` is a static field).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from defects_jax import data
from defects_jax import models
from defects_jax import train
from defects_jax.errors import ConfigError
from defects_jax.models import convert

# The pure train step ``(state, batch, key) -> (state, {"loss", "accuracy"})``:
# softmax cross-entropy on ``batch["image"]`` float[B, H, W, C] and
# ``batch["label"]`` int[B]; dropout from ``key``.
train_step = train.classifier_train_step

SMALL_CNN = "small_cnn"


def make_model(name: str, num_classes: int, *, widths: tuple[int, ...] = (16, 32, 64)):
  """A flax module: a zoo backbone (``models.ZOO``: resnet18/34/50/101,
  mobilenet_v2, vgg16/19) or ``"small_cnn"`` (``widths`` its conv widths).

  Raises:
    ConfigError: unknown name.
  """
  if name == SMALL_CNN:
    return models.SmallCNN(num_classes=num_classes, widths=tuple(widths))
  if name not in models.ZOO:
    raise ConfigError(f"unknown model {name!r}; expected one of "
                      f"{sorted(models.ZOO) + [SMALL_CNN]}")
  return models.ZOO[name](num_classes=num_classes)


def adamw_cosine(learning_rate: float, steps: int, weight_decay: float):
  """AdamW with a cosine decay of the learning rate over ``steps``."""
  return optax.adamw(optax.cosine_decay_schedule(learning_rate, steps),
                     weight_decay=weight_decay)


def make_state(model, tx: optax.GradientTransformation, key: jax.Array, *, image_size: int,
               channels: int = 1, weights: str | Path | None = None) -> train.TrainState:
  """A fresh :class:`~defects_jax.train.TrainState` of ``model`` (jitted init,
  once per model and shape), optionally filled from a torchvision state dict
  ``weights`` (.pth / .npz; the head is replaced, a 3-channel stem summed to
  ``channels`` = 1)."""
  x = jnp.zeros((1, image_size, image_size, channels))
  variables = jax.jit(lambda k: model.init(k, x, train=False))(key)
  if weights is not None:
    variables = convert.from_torchvision(convert.load_state_dict(weights), variables,
                                         skip_head=True)
  return train.TrainState.create(apply_fn=model.apply, variables=variables, tx=tx)


def fit(run, cell: str, model, tx: optax.GradientTransformation, source, *, image_size: int,
        batch_size: int, num_steps: int, weights: str | Path | None = None,
        description: str | None = None, config: dict | None = None) -> train.TrainState:
  """Trains ``model`` from its own initialisation on ``source`` as one cell of
  ``run`` (a :class:`defects_jax.runs.Run`): the state from
  ``run.key(cell, "init")`` (and ``weights``), a shuffled endless grain
  loader (seed ``run.loader_seed(cell)``) with
  ``data.classification_transforms(image_size, train=True)`` (resize, random
  flips, [-1, 1]), ``num_steps`` steps of :data:`train_step` keyed by
  ``run.key(cell, "train")``, checkpointed and resumable in ``run.dir/cell``.

  ``source``: any random-access source whose records have ``image`` (uint8
  [H, W, C], any H, W) and ``label``: a real Subset or a
  :class:`~defects_jax.data.MixedSource`. Returns the trained state.
  """
  state = make_state(model, tx, run.key(cell, "init"), image_size=image_size, weights=weights)
  loader = data.make_loader(source, batch_size=min(batch_size, len(source)),
                            seed=run.loader_seed(cell), num_epochs=None,
                            worker_count=run.cfg.worker_count,
                            transforms=data.classification_transforms(image_size, train=True))
  state, _ = run.train(cell, state=state, step=train_step, loader=loader, num_steps=num_steps,
                       key=run.key(cell, "train"), description=description or cell,
                       config=config)
  return state


@jax.jit
def features(state: train.TrainState, images: jax.Array) -> jax.Array:
  """float32[B, F] pooled features (inference mode) of a zoo backbone or the
  small CNN (``return_features=True``) for images float[B, H, W, C]: e.g. a
  domain FID's feature space (``metrics.domain_fid``)."""
  _, feats = state.apply_fn(state.variables, images, train=False, return_features=True)
  return feats.astype(jnp.float32)


def find_weights(weights_dir: str | Path, name: str) -> Path:
  """``weights_dir/<name>.pth`` or ``.npz``.

  Raises:
    FileNotFoundError: neither exists (the message names both).
  """
  for suffix in (".pth", ".npz"):
    path = Path(weights_dir) / f"{name}{suffix}"
    if path.is_file():
      return path
  raise FileNotFoundError(f"weights_dir={str(weights_dir)!r} has no {name}.pth or {name}.npz "
                          f"(torchvision state dict)")


@jax.jit
def logits(state: train.TrainState, images: jax.Array) -> jax.Array:
  """float32[B, K] logits in inference mode (running BatchNorm statistics, no
  dropout) of images float[B, H, W, C]."""
  return train.classifier_eval_step(state, {"image": images})


def predict_proba(state: train.TrainState, images) -> np.ndarray:
  """float32[B, K] softmax probabilities (inference mode)."""
  return np.asarray(jax.nn.softmax(logits(state, jnp.asarray(images)), axis=-1))


def evaluate(state: train.TrainState, source, *, image_size: int, batch_size: int = 100,
             keep_images: bool = False) -> dict[str, np.ndarray]:
  """Predictions over a whole random-access ``source`` (in order): ``label``
  int[N], ``pred`` int[N], ``proba`` float32[N, K] and, with ``keep_images``,
  ``image`` float32[N, S, S, C] in [-1, 1]."""
  transforms = data.classification_transforms(image_size, train=False)

  def fn(batch):
    return {"proba": predict_proba(state, batch["image"])}
  out = data.collect(source, batch_size=batch_size, transforms=transforms, fn=fn,
                     keep=("label", "image") if keep_images else ("label",))
  out["pred"] = out["proba"].argmax(-1)
  return out
