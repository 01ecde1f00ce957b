"""flax.linen models (NHWC; ``__call__(x, *, train)``; BatchNorm statistics in
the ``batch_stats`` collection; dropout from the ``dropout`` rng).

The zoo (ResNet18/34/50/101, MobileNetV2, VGG16/19) mirrors torchvision layer
for layer; :mod:`defects_jax.models.convert` loads torchvision state dicts.
Every conv goes through :class:`defects_jax.models.layers.Conv`, which picks a
faster lowering for tiny maps on CPU.
"""

from defects_jax.models.dcgan import DCGANDiscriminator
from defects_jax.models.dcgan import DCGANGenerator
from defects_jax.models.layers import AlphaDropout
from defects_jax.models.layers import Conv
from defects_jax.models.layers import ConvTranspose
from defects_jax.models.layers import ConvBN
from defects_jax.models.layers import alpha_dropout
from defects_jax.models.layers import conv2d
from defects_jax.models.layers import conv_transpose2d
from defects_jax.models.mobilenet import MobileNetV2
from defects_jax.models.resnet import ResNet
from defects_jax.models.resnet import ResNet18
from defects_jax.models.resnet import ResNet34
from defects_jax.models.resnet import ResNet50
from defects_jax.models.resnet import ResNet101
from defects_jax.models.small_cnn import SmallCNN
from defects_jax.models.vgg import VGG
from defects_jax.models.vgg import VGG16
from defects_jax.models.vgg import VGG19
from defects_jax.models.weak_detector import WeakDetector

ZOO = {"resnet18": ResNet18, "resnet34": ResNet34, "resnet50": ResNet50,
       "resnet101": ResNet101, "mobilenet_v2": MobileNetV2, "vgg16": VGG16, "vgg19": VGG19}
