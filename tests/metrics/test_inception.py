"""Tests of the InceptionV3-FID network (random init: shapes and plumbing),
its weight converter, FID and domain FID."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from defects_jax import metrics
from defects_jax.metrics import inception as I


@pytest.fixture(scope="module")
def net():
  return I.init_fid_inception(jax.random.key(0), (0, 1, 2, 3))


@pytest.mark.slow
def test_block_shapes_for_gray_and_rgb_inputs(net):
  model, variables = net
  for shape in ((2, 32, 32, 1), (1, 80, 64, 3)):
    x = jax.random.uniform(jax.random.key(1), shape)
    outs = jax.jit(model.apply)(variables, x)
    assert [o.shape[-1] for o in outs] == [64, 192, 768, 2048]
    assert outs[0].shape[1:3] == (73, 73) and outs[-1].shape == (shape[0], 2048)
    assert all(np.all(np.isfinite(np.asarray(o))) for o in outs)
  # Torchvision's layout: 94 conv+BN pairs in the FID network up to the pool.
  convs = [k for k in jax.tree_util.tree_leaves_with_path(variables["params"])
           if jax.tree_util.keystr(k[0]).endswith("['kernel']")]
  assert len(convs) == 94


def _to_torch_layout(variables):
  """The inverse mapping, to test the converter without torch."""
  flat = jax.tree_util.tree_leaves_with_path(variables)
  sd = {"fc.weight": np.zeros((1008, 2048)), "fc.bias": np.zeros(1008)}
  for path, v in flat:
    keys = [p.key for p in path]
    collection, *mods, leaf = keys
    prefix = ".".join(mods)
    v = np.asarray(v)
    if leaf == "kernel":
      sd[f"{prefix}.weight"] = np.transpose(v, (3, 2, 0, 1))
    else:
      sd[f"{prefix}.{dict(scale='weight', bias='bias', mean='running_mean', var='running_var')[leaf]}"] = v
  return sd


def test_converter_maps_torch_names_and_layouts(net):
  _, variables = net
  sd = _to_torch_layout(variables)
  assert sd["Mixed_7c.branch3x3dbl_3a.conv.weight"].shape == (384, 384, 1, 3)
  assert sd["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
  back = I.torch_state_dict_to_variables(sd, variables)
  for (p1, a), (p2, b) in zip(jax.tree_util.tree_leaves_with_path(variables),
                              jax.tree_util.tree_leaves_with_path(back)):
    assert p1 == p2
    np.testing.assert_array_equal(a, b)
  del sd["Mixed_6e.branch_pool.bn.running_var"]
  with pytest.raises(KeyError, match="Mixed_6e.branch_pool.bn.running_var"):
    I.torch_state_dict_to_variables(sd, variables)
  sd = _to_torch_layout(variables)
  sd["Conv2d_1a_3x3.conv.weight"] = np.zeros((32, 1, 3, 3))
  with pytest.raises(ValueError, match=r"Conv2d_1a_3x3.conv.weight: shape \(32, 1, 3, 3\)"):
    I.torch_state_dict_to_variables(sd, variables)


def test_npz_weights_load(net, tmp_path):
  _, variables = net
  np.savez(tmp_path / "w.npz", **_to_torch_layout(variables))
  _, loaded = I.load_fid_inception(str(tmp_path / "w.npz"))
  np.testing.assert_array_equal(loaded["params"]["Mixed_5b"]["branch1x1"]["conv"]["kernel"],
                                variables["params"]["Mixed_5b"]["branch1x1"]["conv"]["kernel"])


@pytest.mark.slow
def test_fid_plumbing_with_random_weights(net):
  # 75x75 (the smallest Inception input) without resizing keeps this fast; the
  # resize path is covered by the shape test above.
  _, variables = net
  model = I.FIDInceptionV3(resize_input=False)
  rng = np.random.default_rng(0)
  a = rng.uniform(0, 1, (6, 75, 75, 1)).astype(np.float32)
  b = (rng.uniform(0, 1, (6, 75, 75, 1)) * 0.2).astype(np.float32)
  d = metrics.fid(model, variables, a, b, batch_size=4)  # two batches, the last padded
  assert np.isfinite(d) and d > 0.0


def test_domain_fid_separates_distributions():
  feat = lambda x: jnp.stack([x.mean((1, 2, 3)), x.std((1, 2, 3)),
                              jnp.abs(jnp.diff(x, axis=1)).mean((1, 2, 3))], -1)
  rng = np.random.default_rng(0)
  a1 = rng.normal(0.5, 0.1, (64, 8, 8, 1)).astype(np.float32)
  a2 = rng.normal(0.5, 0.1, (64, 8, 8, 1)).astype(np.float32)
  b = rng.normal(0.2, 0.3, (64, 8, 8, 1)).astype(np.float32)
  same = metrics.domain_fid(feat, a1, a2, batch_size=20)  # exercises the padded last batch
  diff = metrics.domain_fid(feat, a1, b, batch_size=20)
  assert same < 0.01 < diff
