"""The train-step benchmark harness runs one tiny configuration (no timing
assertions): JAX always, PyTorch when torch is installed."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.slow
def test_harness_runs_a_tiny_configuration(tmp_path, capsys):
  # ResNet18, batch 4 at 32x32: compiles in half MobileNetV2's time (10 vs 19 s
  # on one core); at batch 2 a last BatchNorm sees too few values per channel
  # and training can diverge within steps (in PyTorch too).
  sys.path.insert(0, str(BENCH))
  try:
    import train_step_bench  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.remove(str(BENCH))
  frameworks = "jax,torch" if importlib.util.find_spec("torch") else "jax"
  out = tmp_path / "rows.json"
  assert train_step_bench.main(["--models", "resnet18", "--sizes", "32", "--batch", "4",
                                "--steps", "2", "--warmup", "1", "--frameworks", frameworks,
                                "--json", str(out)]) == 0
  printed = capsys.readouterr().out
  assert "| resnet18 | 4x32x32x1 | jax |" in printed
  rows = json.loads(out.read_text())["rows"]
  assert [r["framework"] for r in rows] == frameworks.split(",")
  for r in rows:
    assert r["steps"] == 2 and r["median_ms"] > 0 and r["peak_mib"] > 0
  if len(rows) == 2:
    assert rows[0]["ratio"] > 0


def test_torch_res_acgan_has_the_jax_architecture():
  """bench/torch_res_acgan.py builds the same networks: equal parameter counts
  for the generator (without VGG19), the discriminator and the VGG19 taps."""
  torch = pytest.importorskip("torch", reason="torch (the bench extra) is not installed")
  import jax  # pylint: disable=g-import-not-at-top
  from defects_jax.train.state import count_params  # pylint: disable=g-import-not-at-top
  from defects_jax.systems import res_acgan as RA  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, str(BENCH))
  try:
    import torch_res_acgan  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.remove(str(BENCH))
  hp = RA.Hyper(image_size=64)
  gen, disc = RA.make_models(hp, "full", 6)
  state = RA.make_state(hp, gen, disc, jax.random.key(0))
  gparams = dict(state["generator"].params)
  vgg = gparams.pop("extractor")
  step = torch_res_acgan.Step(64, 6, batch=2, m=1)
  n = lambda module: sum(p.numel() for p in module.parameters())
  assert n(step.g) == count_params(gparams)
  assert n(step.d) == count_params(state["critic"].params)
  assert n(step.msfe) == count_params(vgg)
  x = torch.rand(2, 1, 64, 64) * 2 - 1
  d_loss, g_loss = step(x, torch.tensor([0, 5]))
  assert torch.isfinite(d_loss) and torch.isfinite(g_loss)


def test_torch_weak_detector_has_the_jax_architecture():
  """bench/torch_weak_detector.py: same parameter count as models.WeakDetector
  (paper sizes) and finite stage-1 / stage-2 updates."""
  torch = pytest.importorskip("torch", reason="torch (the bench extra) is not installed")
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from defects_jax import models  # pylint: disable=g-import-not-at-top
  from defects_jax.train.state import count_params  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, str(BENCH))
  try:
    import torch_weak_detector as twd  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.remove(str(BENCH))
  variables = models.WeakDetector().init(jax.random.key(0), jnp.zeros((1, 128, 64, 1)),
                                         train=False)
  detector = twd.WeakDetector()
  assert sum(p.numel() for p in detector.parameters()) == count_params(variables["params"])
  x, y = torch.rand(2, 1, 128, 64) * 2 - 1, torch.tensor([1.0, 0.0])
  assert torch.isfinite(twd.Stage1(detector)(x, y)) and torch.isfinite(twd.Stage2(detector)(x, y))


def test_torch_edcgan_has_the_jax_architecture():
  """bench/torch_edcgan.py builds the EDCGAN networks of systems.edcgan: equal
  parameter counts at 64x64 (Table 1's last four stages) and a finite step of
  six class GANs."""
  torch = pytest.importorskip("torch", reason="torch (the bench extra) is not installed")
  import jax  # pylint: disable=g-import-not-at-top
  from defects_jax.train.state import count_params  # pylint: disable=g-import-not-at-top
  from defects_jax.systems import edcgan as E  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, str(BENCH))
  try:
    import torch_edcgan  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.remove(str(BENCH))
  hp = E.Hyper(gan_image_size=64, gen_widths=(64, 32, 16, 8), disc_widths=(8, 16, 32, 64))
  gen, disc = E.make_models(hp)
  state = jax.eval_shape(lambda k: E.make_state(hp, gen, disc, k), jax.random.key(0))
  six = torch_edcgan.Six(6, 64, hp.gen_widths, hp.disc_widths, hp.latent_dim)
  n = lambda module: sum(p.numel() for p in module.parameters())
  assert n(six.steps[0].g) == count_params(state["generator"].params)
  assert n(six.steps[0].d) == count_params(state["critic"].params)
  d_loss, g_loss = six(torch.rand(6, 2, 1, 64, 64) * 2 - 1)
  assert torch.isfinite(d_loss) and torch.isfinite(g_loss)
