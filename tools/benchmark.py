"""flan-tune against Hugging Face transformers (PyTorch), side by side in one run.

Both sides get the same random weights (ours exported with `export_hf`), the same
batches and the same optimizer (AdamW, lr 1e-4, weight decay 0.01); every ratio below is
flan-tune / transformers measured here, now, on this machine.

  peak      the machine's measured matmul peak (FLOP/s) per dtype: MFU's denominator.
  train     one training step (forward, backward, AdamW) at T5.1.1-small shape, batch 8,
            lengths 512/128, full rows of random ids: tokens/s and MFU
            (flan_tune.model.flops) of each side.
  useful    the same examples of `flan_offline` trained on both ways: flan-tune's first
            full batches of 512/128 rows (best-fit packing of the mixture's stream);
            transformers gets exactly the examples in them, in batches of 8 padded to
            their longest member (DataCollatorForSeq2Seq's default). Non-padding tokens/s.
  decode    greedy decoding, batch 8, 256 input tokens, 64 new tokens (EOS never stops
            it), against `generate`: new tokens/s, encoder included.
  pipeline  packed batches/s the trainer's input pipeline delivers (DataIterator, one
            host) against the batches/s the train step consumes; packing efficiency at
            the demo's lengths (see flan_tune.training.packing).

float32 runs both sides in float32. bfloat16 is mixed precision on both: float32
parameters and optimizer, bfloat16 matmuls (T5Config.dtype="bfloat16" against
torch.autocast); for decoding, the weights themselves are cast to bfloat16 on both.

Usage: python tools/benchmark.py [--sections train,useful,decode,pipeline]
           [--dtypes float32,bfloat16] [--model t5_1_1_small] [--json out.json]
"""

import argparse
import dataclasses
import functools
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # bench_pipeline

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from flan_tune.launch_config import parse_gin, parse_lengths  # noqa: E402
from flan_tune.model import T5, T5Config, flops, init_variables, unbox  # noqa: E402
from flan_tune.model.hf import export_hf  # noqa: E402
from flan_tune.runtime import partitioning  # noqa: E402
from flan_tune.runtime.model import EncoderDecoderModel  # noqa: E402
from flan_tune.training import optimizers, train_state, trainer  # noqa: E402

SECTIONS = ("train", "useful", "decode", "pipeline")
ADAMW = {"lr": 1e-4, "weight_decay": 0.01}


def timed(fn, runs: int, warmup: int = 1) -> dict:
  """Mean seconds per call over `runs` after `warmup` calls; the first call apart (it
  includes compilation)."""
  start = time.perf_counter()
  fn()
  first = time.perf_counter() - start
  for _ in range(warmup - 1):
    fn()
  times = []
  for _ in range(runs):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return {"s": float(np.mean(times)), "min_s": float(np.min(times)), "first_call_s": first,
          "runs": runs}


# --- the machine -------------------------------------------------------------------------

def matmul_peak(dtype: str, size: int, runs: int = 5) -> float:
  """Best FLOP/s of a square jnp.dot (float32 accumulation) of `size`."""
  a = jnp.ones((size, size), dtype)
  dot = jax.jit(lambda x, y: jnp.dot(x, y, preferred_element_type=jnp.float32))
  seconds = timed(lambda: dot(a, a).block_until_ready(), runs)["min_s"]
  return 2 * size**3 / seconds


# --- flan-tune ---------------------------------------------------------------------------

def dense_batch(rng: np.random.Generator, batch: int, lengths: dict, vocab: int) -> dict:
  """Full rows of random ids ending in EOS: the model features of an unpacked batch."""
  inputs = rng.integers(2, vocab, (batch, lengths["inputs"])).astype(np.int32)
  targets = rng.integers(2, vocab, (batch, lengths["targets"])).astype(np.int32)
  inputs[:, -1] = targets[:, -1] = 1
  return {"encoder_input_tokens": inputs, "decoder_target_tokens": targets,
          "decoder_input_tokens": np.pad(targets, ((0, 0), (1, 0)))[:, :-1],
          "decoder_loss_weights": np.ones_like(targets)}


@dataclasses.dataclass
class Trainer:
  """flan-tune's compiled train step (AdamW, one device) and the state it updates."""

  step_fn: Any
  state: train_state.TrainState
  shardings: train_state.TrainState
  rng: jax.Array

  def __call__(self, batch) -> float:
    self.state, metrics = self.step_fn(self.state, batch, self.rng)
    return float(metrics["loss"])


def flan_tune_trainer(config: T5Config, params, dtype: str) -> Trainer:
  """trainer(batch) -> loss, from a fresh copy of `params` on one device."""
  model = EncoderDecoderModel(T5(config.replace(dtype=dtype)))
  optimizer = optimizers.adamw(optimizers.constant_schedule(ADAMW["lr"]),
                               weight_decay=ADAMW["weight_decay"])
  mesh = partitioning.MeshConfig(data=1).make_mesh(jax.devices()[:1])
  rules = partitioning.axis_rules("standard")
  shardings = train_state.state_shardings(mesh, rules, model.network, optimizer)
  state = train_state.from_params(jax.device_put(jax.tree.map(np.array, params),
                                                 shardings.params), optimizer, shardings)
  step = trainer.compile_train_step(
      trainer.make_train_step(model, optimizer, dropout=False), mesh, rules, shardings,
      partitioning.batch_sharding(mesh, rules))
  return Trainer(step, state, shardings, jax.random.key(0))


def flan_tune_generate(config: T5Config, params, dtype: str, new_tokens: int):
  model = EncoderDecoderModel(T5(config.replace(dtype=dtype)))
  params = jax.tree.map(lambda x: jnp.asarray(x, dtype), params)  # weights in `dtype`
  # eos_id -1 is never produced: every row runs all new_tokens steps, as on the torch side.
  return lambda inputs: jax.block_until_ready(model.predict_batch(
      params, inputs, max_decode_length=new_tokens, eos_id=-1))


# --- transformers ------------------------------------------------------------------------

def torch_trainer(hf_model, dtype: str):
  """run(batch) -> loss: a transformers training step with torch's AdamW (CPU)."""
  import torch

  hf_model.train()
  optimizer = torch.optim.AdamW(hf_model.parameters(), **ADAMW)

  def run(batch):
    inputs = torch.from_numpy(batch["encoder_input_tokens"]).long()
    labels = torch.from_numpy(batch["decoder_target_tokens"]).long()
    labels = labels.masked_fill(labels == 0, -100)  # padding is not a target
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
      loss = hf_model(input_ids=inputs, attention_mask=inputs != 0, labels=labels).loss
    loss.backward()
    optimizer.step()
    return loss.item()
  return run


def torch_generate(hf_model, dtype: str, new_tokens: int, device: str = "cpu"):
  """run(inputs): `generate` on `device`, returning once the tokens are on the host."""
  import torch

  model = hf_model.to(device=device, dtype=getattr(torch, dtype)).eval()

  def run(inputs):
    inputs = torch.from_numpy(np.asarray(inputs)).long().to(device)
    with torch.no_grad():
      out = model.generate(input_ids=inputs, attention_mask=torch.ones_like(inputs),
                           do_sample=False, num_beams=1, max_new_tokens=new_tokens,
                           min_new_tokens=new_tokens, decoder_start_token_id=0,
                           pad_token_id=0, eos_token_id=1)
    assert out.cpu().shape[1] == new_tokens + 1, out.shape
  return run


def load_hf(directory: str):
  import torch
  import transformers

  torch.set_num_threads(os.cpu_count())
  model = transformers.T5ForConditionalGeneration.from_pretrained(directory)
  for module in model.modules():
    if isinstance(module, torch.nn.Dropout):
      module.p = 0.0
  return model


# --- sections ----------------------------------------------------------------------------

def train_section(config, params, hf_dir, dtype, args, peak) -> dict:
  lengths = {"inputs": args.input_length, "targets": args.target_length}
  batch = dense_batch(np.random.default_rng(0), args.batch, lengths, config.vocab_size)
  ours = timed(functools.partial(flan_tune_trainer(config, params, dtype), batch), args.steps)
  theirs = timed(functools.partial(torch_trainer(load_hf(hf_dir), dtype), batch), args.steps)
  tokens = args.batch * (args.input_length + args.target_length)
  model_flops = flops.train_flops(config, args.batch, args.input_length, args.target_length)
  return {"batch": args.batch, "lengths": lengths, "tokens_per_step": tokens,
          "model_flops_per_step": model_flops, "flan_tune": ours, "transformers": theirs,
          "flan_tune_tokens_per_s": tokens / ours["s"],
          "transformers_tokens_per_s": tokens / theirs["s"],
          "flan_tune_mfu": model_flops / ours["s"] / peak,
          "transformers_mfu": model_flops / theirs["s"] / peak,
          "speedup": theirs["s"] / ours["s"]}


def offline_examples(count: int, lengths: dict, seed: int = 0,
                     mixture: str = "flan_offline") -> list:
  """`count` tokenized examples of an offline mixture, trimmed to `lengths`, in mixture
  order."""
  import seqio

  import flan_tune_tasks  # noqa: F401  (registers the offline mixtures)

  ds = seqio.get_mixture_or_task(mixture).get_dataset(
      lengths, split="train", shuffle=False, seed=seed, num_epochs=None)
  out = []
  for example in ds.take(count).as_numpy_iterator():
    out.append({"inputs": example["inputs"][:lengths["inputs"]],
                "targets": example["targets"][:lengths["targets"]]})
  return out


def padded_batches(examples: list, batch: int) -> list:
  """Batches of `batch` examples, each padded to its longest member."""
  out = []
  for start in range(0, len(examples), batch):
    group = examples[start:start + batch]
    li = max(len(e["inputs"]) for e in group)
    lt = max(len(e["targets"]) for e in group)
    inputs = np.stack([np.pad(e["inputs"], (0, li - len(e["inputs"]))) for e in group])
    targets = np.stack([np.pad(e["targets"], (0, lt - len(e["targets"]))) for e in group])
    out.append({"encoder_input_tokens": inputs.astype(np.int32),
                "decoder_target_tokens": targets.astype(np.int32)})
  return out


def packed_batches(stream: list, batch: int, lengths: dict, count: int) -> list:
  """The first `count` full batches of flan-tune's best-fit rows of `stream`, as
  training sees them (no partial batch)."""
  from flan_tune.training import packing

  rows = list(itertools.islice(packing.pack_examples(stream, lengths), count * batch))
  if len(rows) < count * batch:
    raise ValueError(f"{len(stream)} examples fill fewer than {count} batches")
  return [{name: np.stack([row[name] for row in rows[i:i + batch]]) for name in rows[0]}
          for i in range(0, len(rows), batch)]


def unpacked(batches: list) -> list:
  """The examples in packed batches, row by row: what the padded side trains on."""
  examples = []
  for b in batches:
    for row in range(b["encoder_input_tokens"].shape[0]):
      enc, dec = b["encoder_segment_ids"][row], b["decoder_segment_ids"][row]
      for segment in range(1, int(max(enc.max(), dec.max())) + 1):
        examples.append({"inputs": b["encoder_input_tokens"][row][enc == segment],
                         "targets": b["decoder_target_tokens"][row][dec == segment]})
  return examples


def run_all(run, batches) -> float:
  """Seconds to train on every batch once."""
  start = time.perf_counter()
  for batch in batches:
    run(batch)
  return time.perf_counter() - start


def useful_section(config, params, hf_dir, dtype, args, stream: list) -> dict:
  """Both sides trained on the same examples of `stream` (offline_examples')."""
  lengths = {"inputs": args.input_length, "targets": args.target_length}
  packed = packed_batches(stream, args.batch, lengths, args.useful_batches)
  examples = unpacked(packed)
  tokens = sum(len(e["inputs"]) + len(e["targets"]) for e in examples)
  padded = padded_batches(examples, args.batch)
  ours_run = flan_tune_trainer(config, params, dtype)
  ours_run(packed[0])  # compile
  theirs_run = torch_trainer(load_hf(hf_dir), dtype)
  theirs_run(padded[0])
  ours, theirs = run_all(ours_run, packed), run_all(theirs_run, padded)
  slots = lambda batches: sum(b["encoder_input_tokens"].size + b["decoder_target_tokens"].size  # noqa: E731
                              for b in batches)
  return {"examples": len(examples), "non_padding_tokens": tokens,
          "flan_tune": {"batches": len(packed), "s": ours, "token_slots": slots(packed)},
          "transformers": {"batches": len(padded), "s": theirs,
                           "token_slots": slots(padded)},
          "flan_tune_tokens_per_s": tokens / ours,
          "transformers_tokens_per_s": tokens / theirs, "speedup": theirs / ours}


def decode_section(config, params, hf_dir, dtype, args) -> dict:
  lengths = {"inputs": args.decode_input_length, "targets": 1}
  inputs = dense_batch(np.random.default_rng(1), args.batch, lengths,
                       config.vocab_size)["encoder_input_tokens"]
  ours = timed(functools.partial(flan_tune_generate(config, params, dtype, args.new_tokens),
                                 jnp.asarray(inputs)), args.decode_runs)
  theirs = timed(functools.partial(torch_generate(load_hf(hf_dir), dtype, args.new_tokens),
                                   inputs), args.decode_runs)
  tokens = args.batch * args.new_tokens
  return {"batch": args.batch, "input_length": args.decode_input_length,
          "new_tokens": args.new_tokens, "flan_tune": ours, "transformers": theirs,
          "flan_tune_tokens_per_s": tokens / ours["s"],
          "transformers_tokens_per_s": tokens / theirs["s"], "speedup": theirs["s"] / ours["s"]}


def pipeline_section(args, consumed_batches_per_s: dict) -> dict:
  """The input pipeline against the train step's consumption, at the benchmark's shape
  and at the demo's (its model, lengths, mixture and batch)."""
  import bench_pipeline

  out = {}
  bench_lengths = {"inputs": args.input_length, "targets": args.target_length}
  delivered = bench_pipeline.measure_train_input("flan_offline", bench_lengths, args.batch,
                                                 batches=args.pipeline_batches)
  out["benchmark_shape"] = {**delivered, "consumed_batches_per_s": consumed_batches_per_s,
                            "ratio": {dtype: delivered["batches_per_s"] / rate
                                      for dtype, rate in consumed_batches_per_s.items()}}
  demo = demo_train_rate(args)
  delivered = bench_pipeline.measure_train_input(
      "flan_offline_no_nli", demo["lengths"], demo["batch_size"],
      batches=args.pipeline_batches)
  out["demo"] = {**delivered, "consumed_batches_per_s": demo["batches_per_s"],
                 "ratio": delivered["batches_per_s"] / demo["batches_per_s"]}
  return out


def demo_train_rate(args) -> dict:
  """Train steps/s of `make demo`'s FLAN-tuning stage (gin/models/offline_demo.gin, batch
  8, 256/64), on random full rows, float32."""
  import gin

  gin.clear_config()
  parse_gin(["models/offline_demo.gin"], [])
  config = T5Config()
  params = unbox(init_variables(T5(config), jax.random.key(0)))["params"]
  lengths = {"inputs": 256, "targets": 64}
  batch = dense_batch(np.random.default_rng(0), 8, lengths, config.vocab_size)
  seconds = timed(functools.partial(flan_tune_trainer(config, params, "float32"), batch),
                  args.steps * 10)["s"]
  return {"lengths": lengths, "batch_size": 8, "batches_per_s": 1 / seconds}


# --- report ------------------------------------------------------------------------------

def table(results: dict) -> str:
  rows = [("", "flan-tune", "transformers", "ratio")]
  for dtype, peak in results.get("peak_flops", {}).items():
    rows.append((f"matmul peak {dtype} (TFLOP/s)", f"{peak / 1e12:.2f}", "", ""))
  for dtype, r in results.get("train", {}).items():
    rows.append((f"train step {dtype} (tokens/s)", f"{r['flan_tune_tokens_per_s']:.0f}",
                 f"{r['transformers_tokens_per_s']:.0f}", f"{r['speedup']:.2f}x"))
    rows.append((f"  MFU vs measured {dtype} peak", f"{100 * r['flan_tune_mfu']:.1f}%",
                 f"{100 * r['transformers_mfu']:.1f}%", ""))
  for dtype, r in results.get("useful", {}).items():
    rows.append((f"useful work {dtype} (non-pad tokens/s)",
                 f"{r['flan_tune_tokens_per_s']:.0f}", f"{r['transformers_tokens_per_s']:.0f}",
                 f"{r['speedup']:.2f}x"))
  for dtype, r in results.get("decode", {}).items():
    rows.append((f"greedy decode {dtype} (new tokens/s)", f"{r['flan_tune_tokens_per_s']:.1f}",
                 f"{r['transformers_tokens_per_s']:.1f}", f"{r['speedup']:.2f}x"))
  pipeline = results.get("pipeline", {})
  for label, r in pipeline.items():
    ratios = r["ratio"] if isinstance(r["ratio"], dict) else {"float32": r["ratio"]}
    rows.append((f"pipeline {label} (batches/s delivered)", f"{r['batches_per_s']:.1f}", "",
                 ", ".join(f"{v:.1f}x {k} step" for k, v in ratios.items())))
    rows.append((f"  packing efficiency {r['lengths']['inputs']}/{r['lengths']['targets']}",
                 f"{100 * r['efficiency']:.1f}%", "",
                 f"fill: inputs {100 * r['inputs_fill']:.0f}%, "
                 f"targets {100 * r['targets_fill']:.0f}%"))
  widths = [max(len(row[i]) for row in rows) for i in range(4)]
  return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                   for row in rows)


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog=__doc__.split("\n", 2)[2])
  parser.add_argument("--sections", default=",".join(SECTIONS))
  parser.add_argument("--dtypes", default="float32,bfloat16")
  parser.add_argument("--model", default="t5_1_1_small", help="a gin/models/ file's name")
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--lengths", type=parse_lengths, default="inputs=512,targets=128")
  parser.add_argument("--steps", type=int, default=3, help="timed train steps per side")
  parser.add_argument("--useful_batches", type=int, default=4,
                      help="packed batches timed (transformers: the same examples)")
  parser.add_argument("--useful_stream", type=int, default=600,
                      help="mixture examples to pack from")
  parser.add_argument("--decode_input_length", type=int, default=256)
  parser.add_argument("--new_tokens", type=int, default=64)
  parser.add_argument("--decode_runs", type=int, default=3)
  parser.add_argument("--pipeline_batches", type=int, default=40)
  parser.add_argument("--peak_size", type=int, default=2048, help="square matmul for the peak")
  parser.add_argument("--json", help="also write the results here")
  args = parser.parse_args(argv)
  args.sections = [s for s in args.sections.split(",") if s]
  args.dtypes = [d for d in args.dtypes.split(",") if d]
  unknown = set(args.sections) - set(SECTIONS)
  if unknown or set(args.dtypes) - {"float32", "bfloat16"}:
    parser.error(f"--sections from {SECTIONS}, --dtypes from float32,bfloat16")
  args.input_length, args.target_length = args.lengths["inputs"], args.lengths["targets"]
  return args


def main(argv=None) -> int:
  args = parse_args(argv)
  import torch
  import transformers

  parse_gin([f"models/{args.model}.gin"], [])
  config = T5Config()
  params = unbox(jax.jit(lambda key: init_variables(T5(config), key))(jax.random.key(0)))
  params = jax.tree.map(np.asarray, params["params"])
  results = {
      "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
                 f"jax {jax.devices()[0].platform}",
      "versions": {"jax": jax.__version__, "torch": torch.__version__,
                   "transformers": transformers.__version__},
      "model": args.model, "config": config.architecture()}
  results["peak_flops"] = {dtype: matmul_peak(dtype, args.peak_size) for dtype in args.dtypes}
  stream = None
  if "useful" in args.sections:
    stream = offline_examples(args.useful_stream, {"inputs": args.input_length,
                                                   "targets": args.target_length})
  with tempfile.TemporaryDirectory() as hf_dir:
    export_hf(config, params, hf_dir)
    for section in ("train", "useful", "decode"):
      if section not in args.sections:
        continue
      results[section] = {}
      for dtype in args.dtypes:
        print(f"[{section} {dtype}]", flush=True)
        if section == "train":
          results[section][dtype] = train_section(config, params, hf_dir, dtype, args,
                                                  results["peak_flops"][dtype])
        elif section == "useful":
          results[section][dtype] = useful_section(config, params, hf_dir, dtype, args,
                                                   stream)
        else:
          results[section][dtype] = decode_section(config, params, hf_dir, dtype, args)
  if "pipeline" in args.sections:
    print("[pipeline]", flush=True)
    consumed = {dtype: 1 / r["flan_tune"]["s"] for dtype, r in results.get("train", {}).items()}
    results["pipeline"] = pipeline_section(args, consumed or {"float32": float("nan")})
  print(f"\n{args.model}, batch {args.batch}, {results['machine']}")
  print(table(results))
  if args.json:
    write_json(results, args.json)
  return 0


def write_json(results: dict, path: str) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w") as f:
    json.dump(results, f, indent=2, default=float)


if __name__ == "__main__":
  sys.exit(main())
