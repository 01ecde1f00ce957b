"""Evaluation metrics of the five papers (pure numpy / scipy functions)."""

from defects_jax.metrics.classification import accuracy
from defects_jax.metrics.classification import confusion_matrix
from defects_jax.metrics.classification import precision_recall_f1
from defects_jax.metrics.classification import precision_recall_mean
from defects_jax.metrics.detection import average_precision
from defects_jax.metrics.detection import detection_summary
from defects_jax.metrics.detection import fp_at_full_recall
from defects_jax.metrics.detection import fp_fn_at_best_f1
from defects_jax.metrics.detection import pixel_ap
from defects_jax.metrics.detection import precision_recall_curve
from defects_jax.metrics.detection import region_ap
from defects_jax.metrics.detection import region_masks
from defects_jax.metrics.detection import roc_auc
from defects_jax.metrics.generation import feature_statistics
from defects_jax.metrics.generation import frechet_distance
from defects_jax.metrics.generation import mse
from defects_jax.metrics.generation import ssim
from defects_jax.metrics.inception import FIDInceptionV3
from defects_jax.metrics.inception import domain_fid
from defects_jax.metrics.inception import fid
from defects_jax.metrics.inception import features_in_batches
from defects_jax.metrics.inception import init_fid_inception
from defects_jax.metrics.inception import load_fid_inception
