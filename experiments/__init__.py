"""The experiments: thin drivers, one per paper protocol, and their registry.

This folder is the design card's top-level ``experiments/``; it is installed
as ``defects_jax.experiments`` (pyproject's ``package-dir``), so no top-level
module named ``experiments`` lands on a user's path. :data:`EXPERIMENTS` is
the one place that lists them: the command line reads it (names, one-line
descriptions, presets with device and expected time) without importing any
driver, and imports a driver only to run it.

Adding an experiment: write ``experiments/<name>.py`` (``NAME``, ``Config``,
``PRESETS``, ``run(cfg, run)``, ``evaluate(run_dir, cfg)``; see
:mod:`defects_jax.runs`) and add its entry here; the registry test checks that
the two agree.
"""

from __future__ import annotations

import dataclasses
import importlib

from defects_jax.config import PresetInfo
from defects_jax.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Experiment:
  """A registry entry: name, one-line description, presets (name -> info)
  and the commands worth knowing."""

  name: str
  about: str
  presets: dict
  default_preset: str
  commands: tuple = ()

  def load(self):
    """The driver module (imports JAX)."""
    return importlib.import_module(f"{__name__}.{self.name}")


_CPU2 = "2-core CPU"

EXPERIMENTS = {e.name: e for e in (
    Experiment(
        "quickstart",
        "Train a small CNN on the built-in SYNTHETIC six-class defects: the whole pipeline "
        "(data, jitted steps, checkpoints, report) with no data and no GPU.",
        {"default": PresetInfo(f"64x64, 400 steps; about 2 min on a {_CPU2}"),
         "smoke": PresetInfo(f"32x32, 60 steps; about 20 s on a {_CPU2}")},
        "default", ("defects-jax quickstart",)),
    Experiment(
        "weak_ksdd",
        "Weakly supervised LNet + DNet on KolektorSDD from image-level labels "
        "(weakly-supervised-lnet-dnet: Tables 5-6, Figures 5-7).",
        {"smoke": PresetInfo(f"SYNTHETIC defect/mask images, 64x64; about 1 min on a {_CPU2}"),
         "cpu_small": PresetInfo(f"KolektorSDD 3 folds at 176x64, full iteration counts; "
                                 f"7-24 min on a {_CPU2} (Table 5 ablations)"),
         "cpu_reduced": PresetInfo(f"KolektorSDD 3 folds at 352x128, full iteration counts; "
                                   f"about 70 min on a {_CPU2}"),
         "gpu": PresetInfo("the paper protocol at 1408x512 with stage-1 lr 0.01; minutes on "
                           "one H200", "gpu"),
         "paper": PresetInfo("the paper's setting (1408x512, stage-1 lr 0.1, 30 positives per "
                             "fold): Table 6's AP; minutes on one H200", "gpu")},
        "paper",
        ("defects-jax weak_ksdd --preset cpu_small --data-dir DATA",
         "python -m defects_jax.experiments.weak_ksdd q_trace RUN_DIR [N]")),
    Experiment(
        "baselines_neu",
        "Few-shot NEU-CLS baselines: ResNet18/50, MobileNetV2, VGG16 trained on n images per "
        "class (res-acgan Table 2 protocol).",
        {"smoke": PresetInfo(f"SYNTHETIC, ResNet18 at 32x32, n = 30, 10, 100 steps; "
                             f"about 1 min on a {_CPU2}"),
         "cpu_reduced": PresetInfo(f"NEU-CLS, ResNet18 at 64x64, n = 200, 10, 300 steps; "
                                   f"about 25 min on a {_CPU2}"),
         "gpu": PresetInfo("NEU-CLS at 200x200, four models, six n, 500 steps each; about 8 min "
                           "on one H200", "gpu"),
         "paper": PresetInfo("NEU-CLS at 200x200, four models, six n, 2000 steps each (Table 2); "
                             "about 30 min on one H200", "gpu")},
        "paper", ("defects-jax baselines_neu --preset paper --data-dir DATA",)),
    Experiment(
        "res_acgan",
        "Res-ACGAN + Wasserstein divergence + MSFE on few-shot NEU-CLS: accuracy of the class "
        "head and sample quality (res-acgan Tables 1-4).",
        {"smoke": PresetInfo(f"SYNTHETIC six classes at 32x32, 150 iterations; about 1 min "
                             f"on a {_CPU2}"),
         "cpu_reduced": PresetInfo(f"NEU-CLS 64x64, variant full, n = 200, 10, 200 iterations; "
                                   f"about 40 min on a {_CPU2}"),
         "gpu": PresetInfo("NEU-CLS 64x64, variant full, n = 200, 10, 2500 iterations each; "
                           "about 5 min on one H200", "gpu"),
         "paper": PresetInfo("Tables 1-2: variants acgan/res_wdiv/full x six n, 10,000 "
                             "iterations each; about 2.3 h on one H200", "gpu"),
         "paper_ablation": PresetInfo("Table 3: the six variants at n = 200, 10,000 iterations "
                                      "each; about 45 min on one H200", "gpu")},
        "paper", ("defects-jax res_acgan --preset paper --data-dir DATA "
                  "--set vgg_weights=vgg19.pth",)),
    Experiment(
        "edcgan",
        "EDCGAN (one DCGAN per class, ELU/SELU + alpha-dropout discriminator) and the "
        "real/generated mixing study with MobileNetV2, VGG16, ResNet18 on NEU-CLS "
        "(edcgan-mobilenetv2 Tables 2-3).",
        {"smoke": PresetInfo(f"SYNTHETIC six classes at 32x32, tiny GANs, ResNet18 on 2 mixes; about "
                             f"1 min on a {_CPU2}"),
         "cpu_reduced": PresetInfo(f"NEU-CLS, GANs at 64x64 (quarter widths, 657 steps), six "
                                   f"MobileNetV2 mixes + ResNet18 at 100/20/0%, 600 steps each "
                                   f"at 64x64; under an hour on a {_CPU2}"),
         "gpu": PresetInfo("NEU-CLS, GANs at 64x64 (Table 1 widths), classifiers at 64x64, "
                           "1500 steps each; sized for one 8-minute command on one H200 "
                           "(not yet run on a GPU)", "gpu"),
         "paper": PresetInfo("Tables 2-3: GANs at 256x256, 800 epochs; classifiers at 224x224, "
                             "900 epochs per mix (about 1.5M classifier steps in all); days on "
                             "one H200 (not yet run)", "gpu"),
         "paper_dcgan": PresetInfo("as paper with the plain DCGAN discriminator (the baseline "
                                   "switch)", "gpu")},
        "paper", ("defects-jax edcgan --preset cpu_reduced --data-dir DATA",)),
)}


def get(name: str) -> Experiment:
  """The registry entry ``name``.

  Raises:
    ConfigError: unknown experiment (the message lists them).
  """
  if name not in EXPERIMENTS:
    raise ConfigError(f"unknown experiment {name!r}; experiments: {', '.join(EXPERIMENTS)}")
  return EXPERIMENTS[name]
