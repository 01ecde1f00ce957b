"""Helper for test_loop.py: trains the small CNN on synthetic data in its own
process up to a total step count (resuming when the run folder has a
checkpoint) and saves the final params to an .npz."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

from defects_jax import data
from defects_jax import models
from defects_jax import train


def main(workdir: str, num_steps: int, out: str):
  src = data.SyntheticDefects(64, image_size=16, seed=2)
  loader = data.make_loader(src, batch_size=8, seed=5, num_epochs=None,
                            transforms=data.classification_transforms(16, train=True))
  model = models.SmallCNN(num_classes=6, widths=(8, 16))
  variables = model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 1)), train=False)
  state = train.TrainState.create(apply_fn=model.apply, variables=variables,
                                  tx=optax.adam(3e-3))
  state, _ = train.train(state=state, train_step=train.classifier_train_step, loader=loader,
                         root_key=jax.random.key(7), workdir=workdir, num_steps=num_steps,
                         log_every=3, checkpoint_every=4, progress=False)
  leaves = jax.tree_util.tree_leaves_with_path({"params": state.params,
                                                "batch_stats": state.batch_stats,
                                                "opt": state.opt_state})
  np.savez(out, **{jax.tree_util.keystr(p): np.asarray(v) for p, v in leaves})


if __name__ == "__main__":
  main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
