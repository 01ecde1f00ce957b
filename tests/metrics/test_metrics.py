"""Tests of defects_jax.metrics: hand-computed values, and scikit-learn /
scikit-image / scipy where those define the metric."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from defects_jax import metrics

sklearn_metrics = pytest.importorskip("sklearn.metrics")
skimage_metrics = pytest.importorskip("skimage.metrics")

# Scores on a coarse grid so ties are common.
binary_case = st.integers(4, 40).flatmap(lambda n: st.tuples(
    hnp.arrays(np.int64, n, elements=st.integers(0, 1)),
    hnp.arrays(np.float64, n, elements=st.integers(0, 6).map(lambda v: v / 6)))).filter(
        lambda c: 0 < c[0].sum() < len(c[0]))


# --------------------------------------------------------------------------
# classification
# --------------------------------------------------------------------------


def test_classification_hand_values():
  y = [0, 0, 1, 1, 2, 2]
  p = [0, 1, 1, 1, 0, 2]
  assert metrics.accuracy(y, p) == pytest.approx(4 / 6)
  cm = metrics.confusion_matrix(y, p, num_classes=3)
  np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
  prf = metrics.precision_recall_f1(y, p, num_classes=3)
  np.testing.assert_allclose(prf["precision"], [0.5, 2 / 3, 1.0])
  np.testing.assert_allclose(prf["recall"], [0.5, 1.0, 0.5])
  np.testing.assert_allclose(prf["f1"], [0.5, 0.8, 2 / 3])
  assert prf["macro"]["recall"] == pytest.approx(2 / 3)
  np.testing.assert_allclose(metrics.precision_recall_mean(y, p, num_classes=3),
                             [0.5, 5 / 6, 0.75])


@given(hnp.arrays(np.int64, 30, elements=st.integers(0, 3)),
       hnp.arrays(np.int64, 30, elements=st.integers(0, 3)))
def test_classification_matches_sklearn(y, p):
  np.testing.assert_array_equal(metrics.confusion_matrix(y, p, 4),
                                sklearn_metrics.confusion_matrix(y, p, labels=range(4)))
  prf = metrics.precision_recall_f1(y, p, 4)
  ref = sklearn_metrics.precision_recall_fscore_support(y, p, labels=range(4), zero_division=0)
  for ours, theirs in zip((prf["precision"], prf["recall"], prf["f1"], prf["support"]), ref):
    np.testing.assert_allclose(ours, theirs)
  for avg in ("macro", "weighted"):
    r = sklearn_metrics.precision_recall_fscore_support(y, p, labels=range(4), average=avg,
                                                        zero_division=0)
    np.testing.assert_allclose([prf[avg]["precision"], prf[avg]["recall"], prf[avg]["f1"]],
                               r[:3])
  assert metrics.accuracy(y, p) == pytest.approx(sklearn_metrics.accuracy_score(y, p))


def test_classification_errors():
  with pytest.raises(ValueError, match="differ in length"):
    metrics.accuracy([0, 1], [0])
  with pytest.raises(ValueError, match=r"class ids must be in \[0, 2\)"):
    metrics.confusion_matrix([0, 2], [0, 1], num_classes=2)


# --------------------------------------------------------------------------
# detection
# --------------------------------------------------------------------------


def test_detection_hand_values_with_ties():
  y = np.array([1, 0, 1, 0, 0, 1])
  s = np.array([0.9, 0.8, 0.8, 0.3, 0.2, 0.2])
  # Thresholds 0.9: P=1 R=1/3; 0.8: P=2/3 R=2/3; 0.3: P=2/4; 0.2: P=3/6 R=1.
  assert metrics.average_precision(y, s) == pytest.approx(1 / 3 * 1 + 1 / 3 * 2 / 3 + 1 / 3 * 0.5)
  # Lowest positive score 0.2: negatives >= 0.2 are 0.8, 0.3 and the tied 0.2.
  assert metrics.fp_at_full_recall(y, s) == 3
  best = metrics.fp_fn_at_best_f1(y, s)
  # F1 at 0.9: 2/(1+0+3)=0.5; 0.8: 4/(2+1+3)=2/3; 0.3: 4/7; 0.2: 6/9=2/3 -> highest threshold.
  assert best["threshold"] == 0.8 and best["fp"] == 1 and best["fn"] == 1
  assert best["f1"] == pytest.approx(2 / 3)
  assert metrics.roc_auc(y, s) == pytest.approx(sklearn_metrics.roc_auc_score(y, s))


@given(binary_case)
def test_detection_matches_sklearn_including_ties(case):
  y, s = case
  assert metrics.average_precision(y, s) == pytest.approx(
      sklearn_metrics.average_precision_score(y, s), abs=1e-12)
  assert metrics.roc_auc(y, s) == pytest.approx(sklearn_metrics.roc_auc_score(y, s), abs=1e-12)
  p, r, t = metrics.precision_recall_curve(y, s)
  rp, rr, rt = sklearn_metrics.precision_recall_curve(y, s)
  np.testing.assert_allclose(p, rp)
  np.testing.assert_allclose(r, rr)
  np.testing.assert_allclose(t, rt)
  # FP at full recall by brute force.
  thr = s[y == 1].min()
  assert metrics.fp_at_full_recall(y, s) == int(((s >= thr) & (y == 0)).sum())
  # Best F1 equals the best over all thresholds of sklearn's f1.
  best = metrics.fp_fn_at_best_f1(y, s)
  f1s = [sklearn_metrics.f1_score(y, s >= t_) for t_ in np.unique(s)]
  assert best["f1"] == pytest.approx(max(f1s))
  pred = s >= best["threshold"]
  assert best["fp"] == int((pred & (y == 0)).sum()) and best["fn"] == int((~pred & (y == 1)).sum())


def test_detection_errors():
  with pytest.raises(ValueError, match="0/1"):
    metrics.average_precision([0, 2], [0.1, 0.2])
  with pytest.raises(ValueError, match="at least one positive"):
    metrics.fp_at_full_recall([0, 0], [0.1, 0.2])
  with pytest.raises(ValueError, match="both classes"):
    metrics.roc_auc([1, 1], [0.1, 0.2])


# --------------------------------------------------------------------------
# generation
# --------------------------------------------------------------------------


def test_mse_and_ssim_against_skimage():
  rng = np.random.default_rng(0)
  a = rng.integers(0, 256, (40, 36), dtype=np.uint8)
  b = np.clip(a.astype(int) + rng.integers(-30, 30, a.shape), 0, 255).astype(np.uint8)
  assert metrics.mse(a, b) == pytest.approx(skimage_metrics.mean_squared_error(a, b))
  ref = skimage_metrics.structural_similarity(a, b, gaussian_weights=True, data_range=255)
  assert metrics.ssim(a, b) == pytest.approx(ref, abs=1e-10)
  assert metrics.ssim(a, a) == pytest.approx(1.0)
  rgb_a, rgb_b = rng.random((20, 24, 3)), rng.random((20, 24, 3))
  ref = skimage_metrics.structural_similarity(rgb_a, rgb_b, gaussian_weights=True, data_range=1.0,
                                              channel_axis=-1)
  assert metrics.ssim(rgb_a, rgb_b, data_range=1.0) == pytest.approx(ref, abs=1e-10)
  with pytest.raises(ValueError, match="data_range"):
    metrics.ssim(rgb_a, rgb_b)


def test_frechet_distance_closed_form_for_diagonal_gaussians():
  mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
  v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
  # ||mu1-mu2||^2 + sum (sqrt v1 - sqrt v2)^2 = 5 + (1 + 1 + 4).
  d = metrics.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2))
  assert d == pytest.approx(5.0 + 6.0)
  assert metrics.frechet_distance(mu1, np.diag(v1), mu1, np.diag(v1)) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_of_feature_sets_and_singular_covariance():
  rng = np.random.default_rng(0)
  f1 = rng.normal(size=(500, 4))
  f2 = rng.normal(loc=1.0, size=(500, 4))
  mu1, s1 = metrics.feature_statistics(f1)
  np.testing.assert_allclose(s1, np.cov(f1, rowvar=False))  # unbiased
  mu2, s2 = metrics.feature_statistics(f2)
  d = metrics.frechet_distance(mu1, s1, mu2, s2)
  assert 3.5 < d < 4.5  # ~ ||1||^2 = 4 for unit-variance shifted Gaussians
  # Rank-deficient covariances (fewer samples than dimensions) stay finite.
  g1, g2 = rng.normal(size=(3, 8)), rng.normal(size=(3, 8))
  assert np.isfinite(metrics.frechet_distance(*metrics.feature_statistics(g1),
                                              *metrics.feature_statistics(g2)))


def test_pixel_ap_upsamples_heat_by_eight():
  heat = np.zeros((1, 2, 2))
  heat[0, 1, 1] = 1.0
  mask = np.zeros((1, 16, 16), np.uint8)
  mask[0, 8:, 8:] = 1
  ap, chance = metrics.pixel_ap(heat, mask)
  assert ap == pytest.approx(1.0) and chance == pytest.approx(0.25)


def test_region_masks_and_region_ap():
  mask = np.zeros((1, 16, 24), np.uint8)
  mask[0, 9, 17] = 1  # one pixel in region (1, 2)
  regions = metrics.region_masks(mask, (2, 3))
  np.testing.assert_array_equal(regions[0], [[0, 0, 0], [0, 0, 1]])
  heat = np.zeros((1, 2, 3))
  heat[0, 1, 2] = 0.9
  ap, chance = metrics.region_ap(heat, mask)
  assert ap == pytest.approx(1.0) and chance == pytest.approx(1 / 6)
  heat[0, 0, 0] = 0.95  # a clean region ranked first: precision 1/2 at the defect
  assert metrics.region_ap(heat, mask)[0] == pytest.approx(0.5)
  assert np.isnan(metrics.region_ap(heat, np.zeros_like(mask))[0])


def test_detection_summary_columns():
  s = metrics.detection_summary([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1])
  assert set(s) == {"AP", "FP@bestF1", "FN@bestF1", "FP@100%recall"}
  assert s["AP"] == pytest.approx(sklearn_metrics.average_precision_score([1, 0, 1, 0],
                                                                          [0.9, 0.8, 0.7, 0.1]))
  assert s["FP@100%recall"] == 1
