"""Input-pipeline throughput: decode + augment + batch, images/s.

Run (from the repository root):
  python bench/data_bench.py [--data-dir ../shared/datasets] [--epochs 2]

Measures, in one process run, the grain pipeline of defects_jax.data on:
  * NEU-CLS (1800 real 200x200 PNGs; skipped when absent) with 0 and 2 workers,
  * the SYNTHETIC generator through the same pipeline with 0 and 2 workers,
  * the bare synthetic generator (no pipeline), one core, 64x64.
The pipeline is the classifier training chain: resize to --size, random
horizontal+vertical flip, float in [-1, 1], batch --batch. The first batch
(worker start-up) is excluded; the rest of --epochs epochs is timed. Prints a
markdown table; bench/RESULTS.md records the measured runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time

import numpy as np

from defects_jax import data


def time_loader(source, *, workers, batch, size, epochs):
  loader = data.make_loader(source, batch_size=batch, seed=0, num_epochs=epochs,
                            worker_count=workers,
                            transforms=data.classification_transforms(size, train=True))
  it = iter(loader)
  try:
    next(it)  # warm-up: worker start-up, first decode
    start, n = time.perf_counter(), 0
    for b in it:
      n += len(b["label"])
    return n / (time.perf_counter() - start), n
  finally:
    it.close()


def time_generator(n, size):
  src = data.SyntheticDefects(n, image_size=size, seed=0)
  src[0]
  start = time.perf_counter()
  for i in range(n):
    src[i]
  return n / (time.perf_counter() - start), n


def cpu_name() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--data-dir", dest="data_root",
                 default=os.environ.get("DEFECTS_JAX_DATA", "../shared/datasets"))
  p.add_argument("--epochs", type=int, default=2)
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--size", type=int, default=128, help="resize target for the pipeline")
  args = p.parse_args(argv)

  commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip() or "unknown"
  import grain  # pylint: disable=g-import-not-at-top
  print(f"data_bench: {cpu_name()}, {os.cpu_count()} CPUs, "
        f"python {platform.python_version()}, grain {grain.__version__ if hasattr(grain, '__version__') else '?'}, "
        f"commit {commit}; batch {args.batch}, resize {args.size}, {args.epochs} epochs\n")
  rows = []
  try:
    neu = data.NEUCLS(args.data_root)
  except data.DatasetError as e:
    print(f"NEU-CLS skipped: {e}\n")
    neu = None
  synth = data.SyntheticDefects(1800, image_size=200, seed=0)
  for name, src in (("NEU-CLS (real, 200x200 PNG)", neu),
                    ("SYNTHETIC 200x200 (generated)", synth)):
    if src is None:
      continue
    for workers in (0, 2):
      rate, n = time_loader(src, workers=workers, batch=args.batch, size=args.size,
                            epochs=args.epochs)
      rows.append((name, f"grain, {workers} workers", n, rate))
  rate, n = time_generator(3000, 64)
  rows.append(("SYNTHETIC 64x64 generator alone", "1 core, no pipeline", n, rate))

  print("| source | pipeline | images timed | images/s |")
  print("|---|---|---:|---:|")
  for name, how, n, rate in rows:
    print(f"| {name} | {how} | {n} | {rate:,.0f} |")


if __name__ == "__main__":
  main()
