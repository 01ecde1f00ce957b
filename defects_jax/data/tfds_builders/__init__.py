"""tensorflow-datasets builders for the defect datasets, without TensorFlow.

Builders write ``array_record`` files and are read back with
``tfds.data_source``; nothing here calls ``tfds.load`` or ``as_dataset`` or
imports TensorFlow. Because tfds's ``Image`` feature needs TensorFlow to encode
and decode, each example stores the *original image file bytes* (lossless, no
re-encoding) plus, where the dataset has masks, the binary mask as a
zlib-compressed uint8 tensor; :class:`TFDSSource` decodes images with PIL and
yields the same records as the folder sources, so it drops into the same
grain pipeline.

Build (the manual dir is the dataset's folder, as for the folder sources)::

  from defects_jax.data import tfds_builders
  tfds_builders.build("neu_cls", data_dir="~/tensorflow_datasets",
                      manual_dir="../shared/datasets/NEU-CLS")
  source = tfds_builders.TFDSSource("neu_cls", data_dir="~/tensorflow_datasets")

Every example goes through the folder source while building, so a corrupt file
or a bad layout fails the build with the same clear error.
"""

from defects_jax.data.tfds_builders.builders import BUILDERS
from defects_jax.data.tfds_builders.builders import KolektorSdd
from defects_jax.data.tfds_builders.builders import NeuCls
from defects_jax.data.tfds_builders.builders import TFDSSource
from defects_jax.data.tfds_builders.builders import build
