"""Benchmarks flan-tune's T5 against transformers (torch) on this machine's CPU.

(a) a training step (forward + backward, float32, mean of --steps after --warmup) at
    T5.1.1-small shape, batch 8, lengths 512/128;
(b) greedy decoding throughput (batch 8, input 256, 64 new tokens, never stopping early).

Both sides use the same random weights: ours are exported with export_hf and loaded by
transformers. Usage: python tools/bench_model.py [--steps N] [--json out.json]
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch
import transformers

from flan_tune.model import T5, T5Config, decoding, init_variables, unbox
from flan_tune.model.hf import export_hf

# gin/models/t5_1_1_small.gin
SMALL = T5Config(vocab_size=32128, d_model=512, num_heads=6, d_kv=64, d_ff=1024,
                 num_encoder_layers=8, num_decoder_layers=8,
                 mlp_activations=("gelu", "linear"), tie_word_embeddings=False)


def random_batch(rng, batch, input_length, target_length, vocab):
  """Full-length rows of random ids (no padding), targets ending in EOS."""
  inputs = rng.integers(2, vocab, (batch, input_length)).astype(np.int32)
  targets = rng.integers(2, vocab, (batch, target_length)).astype(np.int32)
  inputs[:, -1] = targets[:, -1] = 1
  return inputs, targets


def timed(fn, steps, warmup):
  """(mean seconds per call after warmup, first call seconds incl. compilation)."""
  start = time.perf_counter()
  fn()
  first = time.perf_counter() - start
  for _ in range(warmup - 1):
    fn()
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return float(np.mean(times)), first


def ours_train_step(config, params, inputs, targets):
  model = T5(config)

  def loss_fn(params, inputs, targets):
    decoder_inputs = jnp.pad(targets, ((0, 0), (1, 0)))[:, :-1]
    logits = model.apply({"params": params}, inputs, decoder_inputs, targets,
                         enable_dropout=False)
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32))
    nll = -jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
    return jnp.mean(nll)

  step = jax.jit(jax.value_and_grad(loss_fn))
  inputs, targets = jnp.asarray(inputs), jnp.asarray(targets)
  return lambda: jax.block_until_ready(step(params, inputs, targets))


def torch_train_step(hf_model, inputs, targets):
  inputs, labels = torch.from_numpy(inputs).long(), torch.from_numpy(targets).long()

  def run():
    hf_model.zero_grad(set_to_none=True)
    loss = hf_model(input_ids=inputs, attention_mask=torch.ones_like(inputs), labels=labels).loss
    loss.backward()
  return run


def ours_greedy(config, params, inputs, new_tokens):
  model, inputs = T5(config), jnp.asarray(inputs)
  # eos_id -1 is never produced: all rows run the full new_tokens steps.
  return lambda: jax.block_until_ready(decoding.generate(
      model, params, inputs, max_decode_length=new_tokens, eos_id=-1).tokens)


def torch_greedy(hf_model, inputs, new_tokens):
  inputs = torch.from_numpy(inputs).long()

  def run():
    with torch.no_grad():
      out = hf_model.generate(input_ids=inputs, attention_mask=torch.ones_like(inputs),
                              do_sample=False, num_beams=1, max_new_tokens=new_tokens,
                              min_new_tokens=new_tokens, decoder_start_token_id=0,
                              pad_token_id=0, eos_token_id=1)
    assert out.shape[1] == new_tokens + 1, out.shape
  return run


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--steps", type=int, default=3, help="timed training steps per side")
  parser.add_argument("--warmup", type=int, default=1, help="untimed calls first (compile)")
  parser.add_argument("--decode_runs", type=int, default=2, help="timed generate calls per side")
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--input_length", type=int, default=512)
  parser.add_argument("--target_length", type=int, default=128)
  parser.add_argument("--decode_input_length", type=int, default=256)
  parser.add_argument("--new_tokens", type=int, default=64)
  parser.add_argument("--skip", choices=("train", "decode"), action="append", default=[])
  parser.add_argument("--json", help="also write the results here")
  args = parser.parse_args(argv)

  torch.set_num_threads(os.cpu_count())
  config = SMALL
  params = unbox(jax.jit(lambda key: init_variables(T5(config), key))(jax.random.key(0)))
  params = params["params"]
  with tempfile.TemporaryDirectory() as directory:
    export_hf(config, params, directory)
    hf_model = transformers.T5ForConditionalGeneration.from_pretrained(directory)
  hf_model.config.dropout_rate = 0.0
  rng = np.random.default_rng(0)
  rows, results = [], {
      "device": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus "
                f"({jax.devices()[0].platform})",
      "versions": {"jax": jax.__version__, "torch": torch.__version__,
                   "transformers": transformers.__version__},
      "config": {"d_model": config.d_model, "layers": config.num_encoder_layers,
                 "heads": config.num_heads, "d_kv": config.d_kv, "d_ff": config.d_ff,
                 "vocab": config.vocab_size}}

  if "train" not in args.skip:
    inputs, targets = random_batch(rng, args.batch, args.input_length, args.target_length,
                                   config.vocab_size)
    hf_model.train()
    for dropout in (m for m in hf_model.modules() if isinstance(m, torch.nn.Dropout)):
      dropout.p = 0.0
    ours, ours_first = timed(ours_train_step(config, params, inputs, targets), args.steps,
                             args.warmup)
    theirs, theirs_first = timed(torch_train_step(hf_model, inputs, targets), args.steps,
                                 args.warmup)
    tokens = args.batch * (args.input_length + args.target_length)
    results["train_step"] = {
        "batch": args.batch, "lengths": [args.input_length, args.target_length],
        "steps": args.steps, "ours_s": ours, "ours_first_call_s": ours_first,
        "torch_s": theirs, "torch_first_call_s": theirs_first, "speedup": theirs / ours}
    rows.append(("train step fwd+bwd (s/step)", f"{ours:.3f}", f"{theirs:.3f}",
                 f"{theirs / ours:.2f}x"))
    rows.append(("  tokens/s (inputs+targets)", f"{tokens / ours:.0f}", f"{tokens / theirs:.0f}",
                 ""))

  if "decode" not in args.skip:
    hf_model.eval()
    inputs, _ = random_batch(rng, args.batch, args.decode_input_length, 1, config.vocab_size)
    ours, ours_first = timed(ours_greedy(config, params, inputs, args.new_tokens),
                             args.decode_runs, args.warmup)
    theirs, theirs_first = timed(torch_greedy(hf_model, inputs, args.new_tokens),
                                 args.decode_runs, args.warmup)
    tokens = args.batch * args.new_tokens
    results["greedy_decode"] = {
        "batch": args.batch, "input_length": args.decode_input_length,
        "new_tokens": args.new_tokens, "runs": args.decode_runs, "ours_s": ours,
        "ours_first_call_s": ours_first, "torch_s": theirs, "torch_first_call_s": theirs_first,
        "ours_tokens_per_s": tokens / ours, "torch_tokens_per_s": tokens / theirs,
        "speedup": theirs / ours}
    rows.append(("greedy decode (new tokens/s)", f"{tokens / ours:.1f}", f"{tokens / theirs:.1f}",
                 f"{theirs / ours:.2f}x"))

  print(f"T5.1.1-small shape, float32, {results['device']}")
  header = ("", "flan-tune (jax)", "transformers (torch)", "ours vs torch")
  widths = [max(len(str(row[i])) for row in rows + [header]) for i in range(4)]
  for row in [header] + rows:
    print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)))
  if args.json:
    with open(args.json, "w") as f:
      json.dump(results, f, indent=2)
  return 0


if __name__ == "__main__":
  sys.exit(main())
