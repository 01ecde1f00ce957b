"""Train-step speed and memory, JAX vs plain PyTorch, in one run.

Run (from the repository root; torch from the ``bench`` extra):
  python bench/train_step_bench.py                       # ResNet18 + MobileNetV2, 64 and 128
  python bench/train_step_bench.py --lowering xla        # "before": XLA's conv everywhere
  python bench/train_step_bench.py --models resnet18 --sizes 64 --steps 30

For each (model, input size) it times, for JAX and for PyTorch, the same
architecture (defects_jax.models / bench/torch_models.py, torchvision layout),
optimiser (SGD, lr 0.01, momentum 0.9), loss (softmax cross-entropy), batch
(--batch x size x size x 1, 6 classes) in training mode:

* compile / first step: JAX ``jit(...).lower(...).compile()`` time; PyTorch's
  first step (eager: no compile);
* step time: median and interquartile range over --steps steps after
  --warmup steps, each step waited for (``block_until_ready`` /
  synchronous CPU torch, ``torch.cuda.synchronize`` on GPU); images/s from
  the median;
* peak memory: each measurement runs in its own child process; on CPU the
  child's peak resident set (ru_maxrss, includes the framework itself), on GPU
  the framework's peak device allocation.

``--models res_acgan`` times one Res-ACGAN iteration instead (the full
variant of defects_jax.systems.res_acgan against bench/torch_res_acgan.py): frozen
VGG19 features of the real images, m = 5 critic updates (W-div penalty: a
double backward) of --batch images each, one generator update; Adam; images/s
counts the 5 x --batch real images an iteration consumes.

``--models weak_stage1,weak_stage2`` time weak_ksdd's stage-1 (shared + LNet,
weak loss, SGD 0.1) and stage-2 (DNet, BCE, backbone frozen, SGD 0.01)
updates against bench/torch_weak_detector.py: the paper's networks (LNet
15x15x512), one (positive, negative) pair per update (--batch is ignored),
images (11/4 x size) x size, so --sizes 128 is the cpu_reduced 352x128 and 512
the paper's 1408x512.

``--models edcgan,edcgan6`` time the EDCGAN train step (one discriminator
update, one generator update, non-saturating BCE, Adam; the EDCGAN networks of
defects_jax.systems.edcgan against bench/torch_edcgan.py) for one class's GAN
and for the six class GANs trained together: in JAX one jitted step over the
stacked states (``--class-axis vmap`` or ``loop``), in PyTorch six models
stepped one after the other. --batch images per class; images/s counts all
classes. ``--edcgan-widths paper`` (Table 1) or ``reduced`` (the cpu_reduced
preset's quarter widths).

Prints a markdown table with JAX/PyTorch throughput ratios. Both frameworks use
all the machine's cores (torch.get_num_threads() is printed). Results are
recorded in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NUM_CLASSES = 6
GAN = "res_acgan"
GAN_CRITIC_STEPS = 5
WEAK = ("weak_stage1", "weak_stage2")
EDCGAN = {"edcgan": 1, "edcgan6": 6}  # model name -> classes stepped together
EDCGAN_WIDTHS = {"paper": None,  # the system's defaults (Table 1)
                 "reduced": ((128, 64, 32, 16), (16, 32, 64, 128))}  # cpu_reduced preset


def _edcgan_hyper(size, batch, widths, class_axis):
  from defects_jax.systems import edcgan as E  # pylint: disable=g-import-not-at-top
  extra = {}
  if EDCGAN_WIDTHS[widths]:
    extra = dict(zip(("gen_widths", "disc_widths"), EDCGAN_WIDTHS[widths]))
  return E.Hyper(gan_image_size=size, gan_batch_size=batch, class_axis=class_axis, **extra)


def _jax_edcgan(model_name, size, batch, widths, class_axis):
  """(state, step, batch) of one EDCGAN (k = 1) or k stacked class GANs."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from defects_jax import train  # pylint: disable=g-import-not-at-top
  from defects_jax.systems import edcgan as E  # pylint: disable=g-import-not-at-top
  k = EDCGAN[model_name]
  hp = _edcgan_hyper(size, batch, widths, class_axis)
  gen, disc = E.make_models(hp)
  states = E.make_class_states(hp, gen, disc, jax.random.key(0), k)
  x = np.tanh(np.random.default_rng(0).standard_normal((batch, k, size, size, 1))
              ).astype(np.float32)
  if k == 1:
    return train.index(states, 0), E.make_train_step(hp, gen, disc), {
        "image": jnp.asarray(x[:, 0])}
  return states, E.make_class_step(hp, gen, disc), {"image": jnp.asarray(x)}


def weak_hw(size):
  """KolektorSDD aspect: (11/4 x size rounded down to a multiple of 32, size);
  128 -> 352x128 (weak_ksdd cpu_reduced), 512 -> 1408x512 (paper)."""
  return size * 11 // 4 // 32 * 32, size


def _jax_weak(model_name, size):
  """(state, step, batch) of a weak_ksdd stage update on one random pair."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from defects_jax.systems import weak_detection as WD  # pylint: disable=g-import-not-at-top
  h, w = weak_hw(size)
  hp = WD.Hyper(image_height=h, image_width=w)
  model, variables = WD.init_model(hp, jax.random.key(0))
  tx1, tx2, _ = WD.stage_txs(hp, variables["params"])
  stage1 = model_name == "weak_stage1"
  state = WD.stage_state(model, variables, tx1 if stage1 else tx2)
  step = WD.make_stage1_step(hp) if stage1 else WD.make_stage2_step(hp)
  x = np.random.default_rng(0).uniform(-1, 1, (1, 2, h, w, 1)).astype(np.float32)
  return state, step, {"image": jnp.asarray(x), "label": jnp.asarray([[1, 0]], jnp.int32)}


def _batch(batch, size, seed=0):
  rng = np.random.default_rng(seed)
  return (rng.standard_normal((batch, size, size, 1)).astype(np.float32),
          rng.integers(0, NUM_CLASSES, batch).astype(np.int32))


def _summary(times, batch):
  times = sorted(times)
  q1, med, q3 = np.percentile(times, [25, 50, 75])
  return {"median_ms": 1e3 * med, "iqr_ms": 1e3 * (q3 - q1), "min_ms": 1e3 * times[0],
          "images_per_s": batch / med, "steps": len(times)}


def _peak_rss_mib():
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _jax_gan(size, batch, unroll=True):
  """(state, step, batch) of the res_acgan full variant, paper widths."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from defects_jax.systems import res_acgan as RA  # pylint: disable=g-import-not-at-top
  hp = RA.Hyper(image_size=size, batch_size=batch, num_critic_steps=GAN_CRITIC_STEPS)
  gen, disc = RA.make_models(hp, "full", NUM_CLASSES)
  state = RA.make_state(hp, gen, disc, jax.random.key(0))
  x, y = _batch(batch * GAN_CRITIC_STEPS, size)
  x = np.tanh(x)
  return state, RA.make_train_step(hp, "full", gen, disc, unroll=unroll), {
      "image": jnp.asarray(x), "label": jnp.asarray(y)}


def run_jax(model_name, size, batch, steps, warmup, critic_loop="unrolled", widths="paper",
            class_axis="vmap"):
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from defects_jax import models  # pylint: disable=g-import-not-at-top
  from defects_jax import train  # pylint: disable=g-import-not-at-top

  donate = (0,) if jax.default_backend() != "cpu" else ()
  if model_name == GAN:
    state, step_fn, batch_d = _jax_gan(size, batch, unroll=critic_loop == "unrolled")
    step = jax.jit(step_fn, donate_argnums=donate)
  elif model_name in WEAK:
    state, step_fn, batch_d = _jax_weak(model_name, size)
    step = jax.jit(step_fn, donate_argnums=donate)
    batch = 2
  elif model_name in EDCGAN:
    state, step_fn, batch_d = _jax_edcgan(model_name, size, batch, widths, class_axis)
    step = jax.jit(step_fn, donate_argnums=donate)
  else:
    x, y = _batch(batch, size)
    model = models.ZOO[model_name](num_classes=NUM_CLASSES)
    variables = jax.jit(lambda k: model.init(k, jnp.zeros((1, size, size, 1)), train=False))(
        jax.random.key(0))
    state = train.TrainState.create(apply_fn=model.apply, variables=variables,
                                    tx=optax.sgd(0.01, momentum=0.9))
    step = jax.jit(train.classifier_train_step, donate_argnums=donate)
    batch_d = {"image": jnp.asarray(x), "label": jnp.asarray(y)}
  key = jax.random.key(1)
  t0 = time.perf_counter()
  compiled = step.lower(state, batch_d, key).compile()
  compile_s = time.perf_counter() - t0
  times = []
  for i in range(warmup + steps):
    t = time.perf_counter()
    state, m = compiled(state, batch_d, jax.random.fold_in(key, i))
    loss = m["generator/loss"] if model_name == GAN or model_name in EDCGAN else m["loss"]
    loss = jnp.asarray(loss)
    jax.block_until_ready(loss)
    if i >= warmup:
      times.append(time.perf_counter() - t)
  if not np.isfinite(float(loss)):
    raise FloatingPointError(f"JAX {model_name} loss is not finite")
  dev = jax.devices()[0]
  stats = dev.memory_stats() if dev.platform != "cpu" else None
  peak = (stats["peak_bytes_in_use"] / 2**20 if stats and "peak_bytes_in_use" in stats
          else _peak_rss_mib())
  return {"compile_s": compile_s, "peak_mib": peak,
          "memory": "device" if stats else "process RSS", "device": dev.device_kind,
          "jax": jax.__version__,
          **_summary(times, batch * (GAN_CRITIC_STEPS if model_name == GAN else
                                     EDCGAN.get(model_name, 1)))}


def run_torch(model_name, size, batch, steps, warmup, critic_loop=None, widths="paper",
              class_axis=None):
  import torch  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, str(HERE))
  import torch_models  # pylint: disable=g-import-not-at-top

  dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
  n = batch * (GAN_CRITIC_STEPS if model_name == GAN else 1)
  x, y = _batch(n, size)
  x = np.tanh(x) if model_name == GAN else x
  xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).to(dev)
  yt = torch.from_numpy(y.astype(np.int64)).to(dev)
  torch.manual_seed(0)
  sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
  if model_name == GAN:
    import torch_res_acgan  # pylint: disable=g-import-not-at-top
    gan = torch_res_acgan.Step(size, NUM_CLASSES, batch, GAN_CRITIC_STEPS, device=dev)

    def step():
      return gan(xt, yt)[1]
  elif model_name in EDCGAN:
    import torch_edcgan  # pylint: disable=g-import-not-at-top
    k = EDCGAN[model_name]
    hp = _edcgan_hyper(size, batch, widths, "vmap")
    n = batch * k
    xs = torch.from_numpy(np.tanh(np.random.default_rng(0).standard_normal(
        (k, batch, 1, size, size))).astype(np.float32)).to(dev)
    gans = torch_edcgan.Six(k, size, hp.gen_widths, hp.disc_widths, hp.latent_dim, device=dev)

    def step():
      return gans(xs)[1]
  elif model_name in WEAK:
    import torch_weak_detector as twd  # pylint: disable=g-import-not-at-top
    h, w = weak_hw(size)
    n = 2
    xt = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (2, 1, h, w)).astype(
        np.float32)).to(dev)
    yt = torch.tensor([1.0, 0.0], device=dev)
    detector = twd.WeakDetector().to(dev)
    step = (twd.Stage1 if model_name == "weak_stage1" else twd.Stage2)(detector)
    step = functools.partial(step, xt, yt)
  else:
    model = torch_models.build(model_name, NUM_CLASSES, in_channels=1).to(dev).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
      opt.zero_grad(set_to_none=True)
      loss = loss_fn(model(xt), yt)
      loss.backward()
      opt.step()
      return loss

  t0 = time.perf_counter()
  step()
  sync()
  first_s = time.perf_counter() - t0
  times = []
  for i in range(warmup + steps):
    t = time.perf_counter()
    loss = step()
    sync()
    if i >= warmup:
      times.append(time.perf_counter() - t)
  if not np.isfinite(loss.item()):
    raise FloatingPointError(f"PyTorch {model_name} loss is not finite")
  peak = (torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else _peak_rss_mib())
  return {"compile_s": first_s, "peak_mib": peak,
          "memory": "device" if dev.type == "cuda" else "process RSS",
          "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
          "torch": torch.__version__, "threads": torch.get_num_threads(),
          **_summary(times, n)}


def worker(spec: dict) -> dict:
  fn = run_jax if spec["framework"] == "jax" else run_torch
  return fn(spec["model"], spec["size"], spec["batch"], spec["steps"], spec["warmup"],
            spec.get("critic_loop", "unrolled"), spec.get("edcgan_widths", "paper"),
            spec.get("class_axis", "vmap"))


def measure(spec: dict, lowering: str) -> dict:
  """Runs one measurement in a fresh child process (clean peak memory)."""
  env = dict(os.environ, DEFECTS_JAX_CONV_LOWERING=lowering,
             PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
  proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], env=env,
                        capture_output=True, text=True, check=False)
  if proc.returncode != 0:
    raise RuntimeError(f"benchmark child {spec} failed:\n{proc.stderr[-3000:]}")
  return json.loads(proc.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
  lines = ["| model | input | framework | compile / first step (s) | step median (ms) | "
           "IQR (ms) | images/s | peak memory (MiB) | JAX/PyTorch throughput |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|"]
  for r in rows:
    ratio = f"{r['ratio']:.2f}x" if "ratio" in r else ""
    batch = f"{GAN_CRITIC_STEPS}x{r['batch']}" if r["model"] == GAN else r["batch"]
    h, w = weak_hw(r["size"]) if r["model"] in WEAK else (r["size"], r["size"])
    batch = 2 if r["model"] in WEAK else batch
    if r["model"] in EDCGAN:
      batch = f"{EDCGAN[r['model']]}x{r['batch']}"
    name = (f"{r['model']} ({r['class_axis']})" if r["model"] == "edcgan6"
            and r["framework"] == "jax" else r["model"])
    lines.append(f"| {name} | {batch}x{h}x{w}x1 | {r['framework']} | "
                 f"{r['compile_s']:.1f} | {r['median_ms']:.1f} | {r['iqr_ms']:.1f} | "
                 f"{r['images_per_s']:,.0f} | {r['peak_mib']:,.0f} ({r['memory']}) | {ratio} |")
  return "\n".join(lines)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--models", default="resnet18,mobilenet_v2")
  p.add_argument("--sizes", default="64,128")
  p.add_argument("--batch", type=int, default=32)
  p.add_argument("--steps", type=int, default=20)
  p.add_argument("--warmup", type=int, default=3)
  p.add_argument("--frameworks", default="jax,torch")
  p.add_argument("--lowering", default="auto", choices=["auto", "xla", "taps"],
                 help="JAX conv lowering (DEFECTS_JAX_CONV_LOWERING): auto = the CPU rule")
  p.add_argument("--critic-loop", default="unrolled", choices=["unrolled", "rolled"],
                 help="res_acgan in JAX: unroll the m critic updates (default) or lax.scan")
  p.add_argument("--class-axis", default="vmap", choices=["vmap", "loop"],
                 help="edcgan6 in JAX: vmap the class GANs' step (default) or unroll a loop")
  p.add_argument("--edcgan-widths", default="paper", choices=sorted(EDCGAN_WIDTHS),
                 help="edcgan networks: Table 1's widths or the cpu_reduced preset's")
  p.add_argument("--json", help="also write the rows as JSON here")
  p.add_argument("--worker", help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  if args.worker:
    print(json.dumps(worker(json.loads(args.worker))))
    return 0
  rows = []
  for model in args.models.split(","):
    for size in (int(s) for s in args.sizes.split(",")):
      pair = {}
      for fw in args.frameworks.split(","):
        spec = {"framework": fw, "model": model, "size": size, "batch": args.batch,
                "steps": args.steps, "warmup": args.warmup, "critic_loop": args.critic_loop,
                "edcgan_widths": args.edcgan_widths, "class_axis": args.class_axis}
        r = {**spec, **measure(spec, args.lowering)}
        pair[fw] = r
        rows.append(r)
        print(f"  {model} {size} {fw}: {r['median_ms']:.1f} ms/step", file=sys.stderr)
      if "jax" in pair and "torch" in pair:
        pair["jax"]["ratio"] = pair["jax"]["images_per_s"] / pair["torch"]["images_per_s"]
  if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
  from data_bench import cpu_name  # pylint: disable=g-import-not-at-top (bench/ sibling)
  from defects_jax.runs import git_commit  # pylint: disable=g-import-not-at-top
  jax_row = next((r for r in rows if r["framework"] == "jax"), {})
  torch_row = next((r for r in rows if r["framework"] == "torch"), {})
  head = (f"train_step_bench: {cpu_name()}, {os.cpu_count()} CPUs, python "
          f"{platform.python_version()}, jax {jax_row.get('jax', '-')} on "
          f"{jax_row.get('device', '-')}, torch {torch_row.get('torch', '-')} on "
          f"{torch_row.get('device', '-')} ({torch_row.get('threads', '-')} threads), "
          f"commit {git_commit()}; conv lowering {args.lowering}; {GAN} critic loop "
          f"{args.critic_loop}; edcgan widths {args.edcgan_widths}, class axis "
          f"{args.class_axis}; {args.steps} timed steps "
          f"after {args.warmup} warm-up; classifiers: SGD momentum, cross-entropy, 6 "
          f"classes; {GAN}: Adam, W-div, m = {GAN_CRITIC_STEPS}")
  print(head)
  print(table(rows))
  if args.json:
    Path(args.json).write_text(json.dumps({"header": head, "rows": rows}, indent=1))
  return 0


if __name__ == "__main__":
  sys.exit(main())
