"""One prepared accelerator check that fits a short GPU lease (about 6 minutes, one device).

It needs only what a bare accelerator image has (jax, flax, optax, orbax, torch,
transformers) and a carried gin-config wheel. TensorFlow, seqio, tensorflow_datasets,
tensorflow_text and t5 are blocked before anything else is imported. Running the check
therefore also shows that the model, train step, optimizers, partitioning, decoding and
checkpoints need none of them.

  peak    the measured bf16 matmul peak (square jnp.dot, float32 accumulation);
  train   bf16 train steps (mixed precision, AdamW, one device) of each model, plain and
          with full remat + scanned layers: step time, model TFLOP/s
          (flan_tune.model.flops), MFU against the vendor peak and the measured one;
  decode  greedy decoding of the first model (bf16 weights; EOS never stops it) against
          transformers' `generate` on the same device: new tokens/s;
  checkpoint  the first model's train state saved with flan-tune's Orbax checkpointer
          and restored onto the device: seconds, and whether it comes back bit-equal.

Sections run in that order, each variant on its own. A failure (out of memory, say) is
recorded in the JSON and the check goes on. Once `--budget_s` has passed, the remaining
variants are recorded as skipped, so a lease always brings back a JSON.

  python3 tools/gpu_check.py --json OUT.json          on the accelerator
  python tools/gpu_check.py --smoke --json OUT.json   tiny shapes on the CPU (a test)

What to carry to a GPU machine, and the exact command: README, "Accelerators".
"""

import sys

BLOCKED = ("tensorflow", "tensorflow_datasets", "tensorflow_text", "seqio", "t5")
for _name in BLOCKED:  # `import tensorflow` now raises ImportError, wherever it comes from
  sys.modules[_name] = None

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import functools  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # benchmark

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import benchmark  # noqa: E402  (its timing, batches, trainers and decoders)
from flan_tune.launch_config import parse_gin  # noqa: E402
from flan_tune.model import T5, T5Config, flops, init_variables, unbox  # noqa: E402
from flan_tune.model.hf import export_hf  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Shapes:
  """What one check measures; `full()` for an H100/H200, `smoke()` for a CPU test."""

  models: tuple[tuple[str, int], ...]  # (gin/models/ name, train batch)
  lengths: tuple[int, int]             # train inputs, targets
  steps: int                           # timed train steps per variant
  peak_size: int
  decode_batch: int
  decode_input_length: int
  new_tokens: int
  decode_runs: int

  @classmethod
  def full(cls) -> "Shapes":
    return cls(models=(("t5_1_1_base", 32), ("t5_1_1_large", 16)), lengths=(512, 128),
               steps=10, peak_size=8192, decode_batch=16, decode_input_length=256,
               new_tokens=64, decode_runs=3)

  @classmethod
  def smoke(cls) -> "Shapes":
    return cls(models=(("t5_1_1_tiny", 2),), lengths=(32, 8), steps=2, peak_size=128,
               decode_batch=2, decode_input_length=16, new_tokens=4, decode_runs=1)


VARIANTS = {"plain": {}, "remat_scan": {"remat_policy": "full", "scan_layers": True}}


def model_config(name: str) -> T5Config:
  import gin

  gin.clear_config()
  parse_gin([f"models/{name}.gin"], [])
  return T5Config().replace(dropout_rate=0.0)


def random_params(config: T5Config):
  """Random parameters on the host (the benchmark's trainers place their own copy)."""
  params = jax.jit(lambda key: init_variables(T5(config), key))(jax.random.key(0))
  return jax.tree.map(np.asarray, unbox(params)["params"])


def train_variant(config: T5Config, batch_size: int, shapes: Shapes, peaks: dict) -> dict:
  """One bf16 train step's time and its model FLOP/s against both peaks."""
  inputs, targets = shapes.lengths
  lengths = {"inputs": inputs, "targets": targets}
  batch = benchmark.dense_batch(np.random.default_rng(0), batch_size, lengths,
                                config.vocab_size)
  step = benchmark.flan_tune_trainer(config, random_params(config), "bfloat16")
  timing = benchmark.timed(functools.partial(step, batch), shapes.steps, warmup=2)
  model_flops = flops.train_flops(config, batch_size, inputs, targets)
  achieved = model_flops / timing["s"]
  return {"batch": batch_size, "lengths": lengths, "timing": timing,
          "model_flops_per_step": model_flops, "model_tflops_per_s": achieved / 1e12,
          "tokens_per_s": batch_size * (inputs + targets) / timing["s"],
          "mfu_vs_vendor_peak": achieved / peaks["vendor"] if peaks["vendor"] else None,
          "mfu_vs_measured_peak": achieved / peaks["measured"]}


def decode_section(config: T5Config, shapes: Shapes) -> dict:
  """flan-tune's compiled greedy loop against transformers' generate, same weights (the
  transformers side is skipped where torch is not installed)."""
  params = random_params(config)
  lengths = {"inputs": shapes.decode_input_length, "targets": 1}
  inputs = benchmark.dense_batch(np.random.default_rng(1), shapes.decode_batch, lengths,
                                 config.vocab_size)["encoder_input_tokens"]
  ours = benchmark.timed(functools.partial(
      benchmark.flan_tune_generate(config, params, "bfloat16", shapes.new_tokens),
      jnp.asarray(inputs)), shapes.decode_runs)
  tokens = shapes.decode_batch * shapes.new_tokens
  out = {"batch": shapes.decode_batch, "input_length": shapes.decode_input_length,
         "new_tokens": shapes.new_tokens, "flan_tune": ours,
         "flan_tune_tokens_per_s": tokens / ours["s"]}
  try:
    import torch
  except ImportError:
    return {**out, "transformers": {"skipped": "torch is not installed"}}
  device = "cuda" if jax.devices()[0].platform == "gpu" and torch.cuda.is_available() else "cpu"
  with tempfile.TemporaryDirectory() as hf_dir:
    export_hf(config, params, hf_dir)
    theirs = benchmark.timed(functools.partial(benchmark.torch_generate(
        benchmark.load_hf(hf_dir), "bfloat16", shapes.new_tokens, device), inputs),
        shapes.decode_runs)
  return {**out, "torch_device": device, "transformers": theirs,
          "transformers_tokens_per_s": tokens / theirs["s"], "speedup": theirs["s"] / ours["s"]}


def checkpoint_section(config: T5Config, batch_size: int, shapes: Shapes) -> dict:
  """The train state (params and AdamW moments) after one step, saved with flan-tune's
  Orbax checkpointer to local disk and restored onto the device: seconds, and bit-equality."""
  from flan_tune.runtime import checkpoints

  inputs, targets = shapes.lengths
  trainer = benchmark.flan_tune_trainer(config, random_params(config), "bfloat16")
  trainer(benchmark.dense_batch(np.random.default_rng(0), batch_size,
                                {"inputs": inputs, "targets": targets}, config.vocab_size))
  state = jax.block_until_ready(trainer.state)
  size = sum(leaf.nbytes for leaf in jax.tree.leaves(state))
  with tempfile.TemporaryDirectory() as directory:
    with checkpoints.Checkpointer(directory, checkpoints.CheckpointConfig(
        save_interval_steps=1)) as checkpointer:
      started = time.perf_counter()
      checkpointer.save(1, state, {"check": "gpu_check"}, force=True)
      checkpointer.wait()
      saved = time.perf_counter() - started
      started = time.perf_counter()
      restored, data = checkpointer.restore(checkpoints.abstract_like(state, trainer.shardings))
      jax.block_until_ready(restored)
      read = time.perf_counter() - started
  equal = all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in
              zip(jax.tree.leaves(state), jax.tree.leaves(restored)))
  return {"bytes": size, "save_s": saved, "restore_s": read,
          "save_gb_per_s": size / saved / 1e9, "restore_gb_per_s": size / read / 1e9,
          "bit_equal": equal and data == {"check": "gpu_check"}}


def attempt(results: dict, key: str, began: float, budget_s: float, fn) -> None:
  """results[key] = fn(), or why not: over the budget, or the error's last lines."""
  if time.monotonic() - began > budget_s:
    results[key] = {"skipped": f"over the {budget_s:.0f} s budget"}
    return
  print(f"[{key}]", flush=True)
  started = time.monotonic()
  try:
    results[key] = fn()
  except Exception as e:  # noqa: BLE001 -- one failing variant must not lose the others
    results[key] = {"error": f"{type(e).__name__}: {str(e)[:500]}",
                    "traceback": traceback.format_exc()[-2000:]}
    print(f"  failed: {type(e).__name__}: {str(e)[:200]}", flush=True)
  results[key]["wall_s"] = time.monotonic() - started


def run_check(shapes: Shapes, budget_s: float) -> dict:
  began = time.monotonic()
  device = jax.devices()[0]
  vendor = flops.peak_flops_per_device(device.device_kind)
  results = {"machine": f"{platform.processor() or platform.machine()}, "
                        f"{os.cpu_count()} cpus",
             "device": f"{device.platform} {device.device_kind}",
             "versions": _versions(), "blocked_imports": list(BLOCKED),
             "vendor_peak_bf16_tflops": vendor / 1e12 if vendor else None,
             "shapes": dataclasses.asdict(shapes)}
  measured = benchmark.matmul_peak("bfloat16", shapes.peak_size)
  results["measured_peak_bf16_tflops"] = measured / 1e12
  peaks = {"vendor": vendor, "measured": measured}
  for name, batch_size in shapes.models:
    config = model_config(name)
    for variant, knobs in VARIANTS.items():
      attempt(results, f"train/{name}/{variant}", began, budget_s, functools.partial(
          train_variant, config.replace(**knobs), batch_size, shapes, peaks))
  first, first_batch = shapes.models[0]
  attempt(results, f"decode/{first}", began, budget_s,
          functools.partial(decode_section, model_config(first), shapes))
  attempt(results, f"checkpoint/{first}", began, budget_s,
          functools.partial(checkpoint_section, model_config(first), first_batch, shapes))
  results["wall_s"] = time.monotonic() - began
  return results


def _versions() -> dict:
  versions = {"python": platform.python_version(), "jax": jax.__version__}
  for name in ("jaxlib", "flax", "optax", "orbax.checkpoint", "torch", "transformers"):
    try:
      versions[name] = __import__(name, fromlist=["_"]).__version__
    except (ImportError, AttributeError):
      versions[name] = None
  return versions


def table(results: dict) -> str:
  lines = [f"{results['device']}; measured bf16 peak {results['measured_peak_bf16_tflops']:.1f}"
           f" TFLOP/s, vendor {results['vendor_peak_bf16_tflops'] or 'unknown'}"]
  for key, value in results.items():
    if not isinstance(value, dict) or "/" not in key:
      continue
    if "error" in value or "skipped" in value:
      lines.append(f"  {key:<36} {value.get('error') or value['skipped']}")
    elif key.startswith("checkpoint/"):
      lines.append(f"  {key:<36} {value['bytes'] / 1e9:.2f} GB saved in {value['save_s']:.1f} s,"
                   f" restored in {value['restore_s']:.1f} s; bit-equal: {value['bit_equal']}")
    elif key.startswith("train/"):
      vendor = value["mfu_vs_vendor_peak"]
      lines.append(f"  {key:<36} {value['timing']['s'] * 1e3:8.1f} ms/step  "
                   f"{value['model_tflops_per_s']:7.1f} TFLOP/s  MFU "
                   f"{'n/a' if vendor is None else f'{100 * vendor:.1f}%'} vendor, "
                   f"{100 * value['mfu_vs_measured_peak']:.1f}% measured")
    else:
      theirs = ("transformers skipped: torch is not installed" if "speedup" not in value
                else f"transformers {value['transformers_tokens_per_s']:.0f} "
                     f"({value['speedup']:.2f}x, torch on {value['torch_device']})")
      lines.append(f"  {key:<36} {value['flan_tune_tokens_per_s']:9.0f} new tokens/s; {theirs}")
  return "\n".join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--smoke", action="store_true", help="tiny shapes, for the CPU")
  parser.add_argument("--budget_s", type=float, default=330.0,
                      help="no new variant starts after this many seconds")
  parser.add_argument("--json", help="write everything here")
  args = parser.parse_args(argv)
  results = run_check(Shapes.smoke() if args.smoke else Shapes.full(), args.budget_s)
  print(table(results), flush=True)
  if args.json:
    benchmark.write_json(results, args.json)
  return 0


if __name__ == "__main__":
  sys.exit(main())
