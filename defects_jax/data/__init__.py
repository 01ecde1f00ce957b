"""Datasets, paper splits, the synthetic default and grain input pipelines."""

from defects_jax.data.sources import CrackForest
from defects_jax.data.sources import DATA_ENV
from defects_jax.data.sources import DatasetError
from defects_jax.data.sources import KolektorSDD
from defects_jax.data.sources import MVTecAD
from defects_jax.data.sources import NEUCLS
from defects_jax.data.sources import resolve_root
from defects_jax.data.splits import CrackForestPatches
from defects_jax.data.splits import Split
from defects_jax.data.splits import Subset
from defects_jax.data.splits import crackforest_split
from defects_jax.data.splits import kolektor_fold_split
from defects_jax.data.splits import kolektor_folds
from defects_jax.data.splits import neu_fewshot_split
from defects_jax.data.splits import stratified_split
from defects_jax.data.synthetic import SyntheticDefects
from defects_jax.data import transforms
from defects_jax.data.pipeline import PairSource
from defects_jax.data.pipeline import classification_transforms
from defects_jax.data.pipeline import collect
from defects_jax.data.pipeline import make_loader
from defects_jax.data.pipeline import pair_transforms
from defects_jax.data.sources import load_source
