"""res_acgan: the adversarial step, the ablation losses, sampling, and the smoke run."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from defects_jax import cli
from defects_jax import losses
from experiments import res_acgan as ra

TINY = ra.Config(dataset="synthetic", image_size=32, batch_size=4, num_critic_steps=2,
                 latent_dim=16, gen_widths=(8, 4), disc_widths=(4, 8, 8, 8), head_width=8,
                 num_res_blocks=1, msfe_taps=(7, 5, 2))  # shallow taps: 4 VGG convs, fast
# which loss functions each adversarial setting must call (Table 3 rows)
EXPECTED = {
    "bce": {"bce_discriminator_loss", "bce_generator_loss", "acgan_class_loss"},
    "wgan-gp": {"wgan_critic_loss", "gradient_penalty", "wgan_generator_loss",
                "acgan_class_loss"},
    "wdiv": {"wgan_critic_loss", "wasserstein_div_penalty", "wgan_generator_loss",
             "acgan_class_loss"},
}
ADVERSARIAL = set().union(*EXPECTED.values())


def _batch(cfg, n=None, seed=0):
  n = n or cfg.batch_size * cfg.num_critic_steps
  s = cfg.image_size
  x = jax.random.uniform(jax.random.key(seed), (n, s, s, 1), minval=-1, maxval=1)
  return {"image": x, "label": jnp.arange(n) % 6}


def _changed(a, b):
  return any(bool(jnp.any(x != y)) for x, y in zip(jax.tree_util.tree_leaves(a),
                                                   jax.tree_util.tree_leaves(b)))


@pytest.mark.parametrize("vname", list(ra.VARIANTS))
def test_each_variant_builds_its_intended_loss_and_networks(vname, monkeypatch):
  """Traced (not compiled, to stay fast): the step of every Table 3 variant calls
  exactly its loss functions and builds its networks."""
  called = set()
  for name in ADVERSARIAL:
    fn = getattr(losses, name)

    def spy(*a, _fn=fn, _name=name, **kw):
      called.add(_name)
      return _fn(*a, **kw)
    monkeypatch.setattr(losses, name, spy)
  variant = ra.VARIANTS[vname]
  gen, disc = ra.make_models(TINY, variant, 6)
  state = jax.eval_shape(lambda k: ra.make_state(TINY, gen, disc, k), jax.random.key(0))
  new, metrics = jax.eval_shape(ra.make_train_step(TINY, variant, gen, disc), state,
                                _batch(TINY), jax.random.key(1))
  assert called == EXPECTED[variant.adversarial]
  assert set(metrics) >= {"critic/adversarial", "critic/penalty", "critic/class",
                          "generator/adversarial", "generator/class"}
  g = state["generator"].params
  assert ("extractor" in g) == variant.msfe
  assert any(k.startswith("res_") for k in g) == variant.residual
  assert any(k.startswith("ResBlock") for k in state["critic"].params) == variant.residual


def test_one_jitted_step_updates_both_networks():
  variant = ra.VARIANTS["full"]
  gen, disc = ra.make_models(TINY, variant, 6)
  state = ra.make_state(TINY, gen, disc, jax.random.key(0))
  step = jax.jit(ra.make_train_step(TINY, variant, gen, disc))
  new, metrics = step(state, _batch(TINY), jax.random.key(1))
  assert new["generator"].params["fc"]["kernel"].shape == (16, 8 * 8 * 8)
  assert all(np.isfinite(float(v)) for v in metrics.values())
  assert float(metrics["critic/penalty"]) > 0
  assert int(new["critic"].step) == TINY.num_critic_steps and int(new["generator"].step) == 1
  assert _changed(new["critic"].params, state["critic"].params)
  g_new, g_old = new["generator"].params, state["generator"].params
  assert _changed(g_new["fc"], g_old["fc"]) and _changed(g_new["to_image"], g_old["to_image"])
  assert _changed(new["generator"].batch_stats, state["generator"].batch_stats)
  # frozen VGG19 (vgg_trainable=False): bit-identical
  for a, b in zip(jax.tree_util.tree_leaves(g_new["extractor"]),
                  jax.tree_util.tree_leaves(g_old["extractor"])):
    np.testing.assert_array_equal(a, b)


def test_critic_loss_is_eq_10_to_12_written_out():
  """The full variant's critic loss equals W critic loss + k E||grad D(u)||^p +
  CE(real) + CE(fake), computed here directly (dropout 0 so D is deterministic)."""
  cfg = ra.config_lib.override(TINY, ["dropout=0.0"])
  variant = ra.VARIANTS["full"]
  gen, disc = ra.make_models(cfg, variant, 6)
  state = ra.make_state(cfg, gen, disc, jax.random.key(0))
  batch = _batch(cfg, cfg.batch_size)
  g = state["generator"]
  batch["guide_features"] = gen.apply(g.variables, batch["image"],
                                      method=ra.Generator.guide_features)
  critic_loss, _ = ra.make_losses(cfg, variant, gen, disc)
  key = jax.random.key(7)
  params = state["critic"].params
  got, (_, parts) = jax.jit(critic_loss)(params, state, batch, key)

  k_z, _, _, k_pen, _ = jax.random.split(key, 5)
  z = jax.random.uniform(k_z, (cfg.batch_size, cfg.latent_dim), minval=-1, maxval=1)
  fake, _ = gen.apply(g.variables, z, batch["label"], train=True, mutable=["batch_stats"],
                      guide_features=batch["guide_features"])
  d = lambda x: disc.apply({"params": params}, x, train=False)
  (rs, rl), (fs, fl) = d(batch["image"]), d(fake)
  e = jax.random.uniform(k_pen, (cfg.batch_size, 1, 1, 1))
  u = batch["image"] + e * (fake - batch["image"])
  grads = jax.vmap(jax.grad(lambda x: d(x[None])[0][0]))(u)
  norms = jnp.sqrt(jnp.sum(grads ** 2, axis=(1, 2, 3)))
  penalty = 2.0 * jnp.mean(norms ** 6)
  ce = lambda logits: -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(len(logits)),
                                                             batch["label"]])
  want = (jnp.mean(fs) - jnp.mean(rs)) + penalty + ce(rl) + ce(fl)
  assert float(parts["penalty"]) == pytest.approx(float(penalty), rel=1e-4, abs=1e-8)
  assert float(got) == pytest.approx(float(want), rel=1e-4, abs=1e-5)


def test_sampling_returns_images_of_the_requested_classes():
  gen, disc = ra.make_models(TINY, ra.VARIANTS["res_wdiv"], 6)  # (the smoke run samples
  # with MSFE guides)
  state = ra.make_state(TINY, gen, disc, jax.random.key(0))
  train_x = np.asarray(_batch(TINY, 12)["image"])
  train_y = np.arange(12) % 6
  want = np.array([2, 2, 5, 0, 2])
  fakes, partner = ra.sample(state, gen, want, jax.random.key(3), train_x, train_y,
                             latent_dim=TINY.latent_dim)
  assert fakes.shape == (5, 32, 32, 1) and fakes.dtype == np.float32
  assert np.all(np.abs(fakes) <= 1.0)
  np.testing.assert_array_equal(train_y[partner], want)  # guides of the requested class
  with pytest.raises(ValueError, match=r"classes \[7\]"):
    ra.sample(state, gen, np.array([7]), jax.random.key(3), train_x, train_y,
              latent_dim=TINY.latent_dim)


def test_sample_quality_of_a_copy_is_perfect():
  rng = np.random.default_rng(0)
  train_x = rng.uniform(-1, 1, (6, 16, 16, 1)).astype(np.float32)
  train_y = np.array([0, 0, 1, 1, 2, 2])
  q = ra.sample_quality(train_x[[1, 2]], np.array([0, 1]), np.array([1, 2]), train_x, train_y)
  assert q["MSE (guide)"] == 0.0 and q["MSE (nearest)"] == 0.0
  assert q["SSIM (guide)"] == pytest.approx(1.0) and q["SSIM (nearest)"] == pytest.approx(1.0)
  # paired with the other image of the class: the nearest pairing finds the copy
  q = ra.sample_quality(train_x[[1]], np.array([0]), np.array([0]), train_x, train_y)
  assert q["MSE (guide)"] > 1000 and q["MSE (nearest)"] == 0.0


def test_bad_configs_are_refused(tmp_path):
  with pytest.raises(ValueError, match="variants"):
    ra.run(ra.config_lib.override(TINY, ["variants=senet"]), tmp_path)
  with pytest.raises(FileNotFoundError, match="nope.pth"):
    ra.run(ra.config_lib.override(TINY, [f"vgg_weights={tmp_path / 'nope.pth'}"]), tmp_path)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
  out = tmp_path_factory.mktemp("res_acgan")
  assert cli.main(["res_acgan", "--preset", "smoke", "--out", str(out), "--no-progress"]) == 0
  (run_dir,) = list((out / "res_acgan").iterdir())
  return run_dir


@pytest.mark.slow
def test_smoke_class_head_beats_chance(smoke_run, capsys):
  results = json.loads((smoke_run / "results.json").read_text())
  (cell,) = results
  # six balanced classes: chance is 1/6; measured 0.347 with the smoke preset
  assert cell["accuracy"] > 1.5 / 6, cell["accuracy"]
  assert 0 < cell["SSIM (nearest)"] <= 1 and cell["MSE (nearest)"] <= cell["MSE (guide)"]
  report = (smoke_run / "report.md").read_text()
  assert "SYNTHETIC" in report and "NOT ImageNet-pretrained" in report
  assert (smoke_run / "figures" / "samples_full_n30.png").is_file()
  assert (smoke_run / "figures" / "cm_full_n30.png").is_file()
  capsys.readouterr()
  assert cli.main(["evaluate", str(smoke_run)]) == 0
  assert json.loads(capsys.readouterr().out)["full/n30"]["accuracy"] == cell["accuracy"]
