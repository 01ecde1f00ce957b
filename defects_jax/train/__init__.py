"""Train core: state pytrees, pure steps, schedules and the loop."""

from defects_jax.train import schedules
from defects_jax.train.loop import Interrupted
from defects_jax.train.loop import NonFiniteError
from defects_jax.train.loop import StopSignal
from defects_jax.train.loop import read_metrics
from defects_jax.train.loop import train
from defects_jax.train.state import TrainState
from defects_jax.train.state import count_params
from defects_jax.train.state import freeze
from defects_jax.train.state import index
from defects_jax.train.state import stack
from defects_jax.train.state import stack_size
from defects_jax.train.state import unstack
from defects_jax.train.steps import classifier_eval_step
from defects_jax.train.steps import classifier_train_step
from defects_jax.train.steps import cross_entropy
from defects_jax.train.steps import make_adversarial_step
