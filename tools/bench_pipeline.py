"""Input-pipeline throughput: rendered + tokenized + packed examples/s and tokens/s.

flan-tune renders prompts in Python (seeded template, option style and few-shot
choices, token-budgeted exemplars). The peer is what a plain seqio task does with the
same source and lengths: one fixed template formatted in TensorFlow, no Python in the
loop (the way t5.data tasks format examples). Both run here, in one process, through
the same tokenizer and seqio's packing EncDecFeatureConverter; the ratio is the cost
(or not) of flan-tune's rendering.

With --train_input it measures instead what training gets: packed batches/s through
flan_tune.training.input_pipeline (TrainInput -> DataIterator, the trainer's path) for
each packer, batch size and shuffle setting, with packing efficiency (fewest rows
possible / rows used; see flan_tune.training.packing) and each feature's fill.
`measure_train_input` is the function tools/benchmark.py imports.

Usage: python tools/bench_pipeline.py [--mixture flan_offline] [--rows 300] [--warmup_rows 800]
                                      [--lengths inputs=512,targets=128] [--json out.json]
       python tools/bench_pipeline.py --train_input [--mixture flan_offline_no_nli]
           [--lengths inputs=256,targets=64] [--batch_sizes 8,64] [--packers best_fit,seqio]
           [--shuffle off,on] [--batches 20] [--warmup_batches 3]
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import seqio  # noqa: E402
import tensorflow as tf  # noqa: E402

import flan_tune_tasks  # noqa: E402,F401  (registers flan_offline)
from flan_tune.launch_config import parse_lengths  # noqa: E402
from flan_tune.mixtures import mixture_rates  # noqa: E402
from flan_tune.tasks import registry  # noqa: E402
from flan_tune.tasks.templates import OPTIONS_SLOT, pattern_fields  # noqa: E402
from flan_tune.training import packing  # noqa: E402
from flan_tune.training.input_pipeline import DataIterator, TrainInput  # noqa: E402


def measure(dataset, lengths, warmup_rows, rows):
  """Packs with seqio's EncDecFeatureConverter(pack=True) and times, on one iterator,
  the first `warmup_rows` rows (start-up: graphs, exemplar pools, every member's shuffle
  buffer), then `rows` rows (steady state). Returns (start-up s, steady s, examples,
  tokens)."""
  packed = seqio.EncDecFeatureConverter(pack=True)(dataset, dict(lengths)).as_numpy_iterator()
  start = time.perf_counter()
  for _ in range(warmup_rows):
    next(packed)
  startup = time.perf_counter() - start
  examples = tokens = 0
  start = time.perf_counter()
  for _ in range(rows):
    row = next(packed)
    examples += int(row["encoder_segment_ids"].max(axis=-1).sum())
    tokens += int((row["encoder_input_tokens"] != 0).sum() +
                  (row["decoder_target_tokens"] != 0).sum())
  return startup, time.perf_counter() - start, examples, tokens


def measure_train_input(mixture, lengths, batch_size, batches=20, warmup_batches=3,
                        packer="best_fit", shuffle=True, seed=0, min_seconds=20.0,
                        num_workers=None):
  """Packed batches/s the trainer's input path delivers, on one host.

  start-up (`startup_s`: building the pipeline and the first batch; on the tf.data path
  a shuffled mixture also fills the buffer of each member it samples) and warm-up
  (`warmup_s`: the next `warmup_batches`) are timed apart from the steady state (at
  least `batches` more and `min_seconds`, so that the Grain path's rate spans several
  packing windows), over which the rates and `packing.packing_stats`
  (efficiency, inputs_fill, targets_fill, examples_per_row) are taken."""
  cfg = TrainInput(mixture_or_task_name=mixture, task_feature_lengths=dict(lengths),
                   batch_size=batch_size, seed=seed, pack=True, packer=packer,
                   shuffle=shuffle, num_workers=num_workers)
  start = time.perf_counter()
  iterator = DataIterator(cfg)
  next(iterator)
  startup = time.perf_counter() - start
  start = time.perf_counter()
  for _ in range(warmup_batches):
    next(iterator)
  warmup = time.perf_counter() - start
  start, timed = time.perf_counter(), []
  while len(timed) < batches or time.perf_counter() - start < min_seconds:
    timed.append(next(iterator))
  seconds = time.perf_counter() - start
  iterator.close()
  batches = len(timed)
  stats = packing.packing_stats(timed)
  return {"mixture": mixture, "lengths": dict(lengths), "batch_size": batch_size,
          "packer": packer, "shuffle": shuffle, "startup_s": startup, "warmup_s": warmup,
          "seconds": seconds, "batches": batches, "batches_per_s": batches / seconds,
          "examples_per_s": stats["examples_per_row"] * stats["rows"] / seconds, **stats}


def plain_seqio_mixture(name, rates):
  """The peer: the same sources, one TF-formatted template per task, seqio tokenization."""
  members = []
  for seqio_name, rate in rates.items():
    variant = registry.get_variant(seqio_name)
    task = variant.task
    template = task.templates[task.templates_for(variant.style)[0]]
    input_fields = sorted(pattern_fields(template.inputs) - {OPTIONS_SLOT})
    target_fields = sorted(pattern_fields(template.targets))

    def format_in_tf(example, input_fields=input_fields, target_fields=target_fields):
      return {"inputs": tf.strings.join([example[f] for f in input_fields], separator="\n"),
              "targets": tf.strings.join([example[f] for f in target_fields], separator=" ")}

    peer_name = f"peer_{seqio_name}"
    if peer_name not in seqio.TaskRegistry.names():
      seqio.TaskRegistry.add(
          peer_name, source=task.source,
          preprocessors=[seqio.map_over_dataset(format_in_tf), seqio.preprocessors.tokenize,
                         seqio.preprocessors.append_eos_after_trim],
          output_features=seqio.get_mixture_or_task(seqio_name).output_features)
    members.append((peer_name, rate))
  return seqio.Mixture(f"peer_{name}", members)


def run(name, rows, lengths, warmup_rows, seed=0):
  rates = mixture_rates(name)
  ours = seqio.Mixture(name + "_bench", sorted(rates.items()))
  results = {}
  for label, mixture in (("flan-tune", ours), ("plain seqio", plain_seqio_mixture(name, rates))):
    ds = mixture.get_dataset(lengths, split="train", seed=seed, num_epochs=None)
    startup, seconds, examples, tokens = measure(ds, lengths, warmup_rows, rows)
    results[label] = {"startup_s": startup, "examples_per_s": examples / seconds,
                      "tokens_per_s": tokens / seconds, "packed_rows_per_s": rows / seconds,
                      "non_padding_fraction": tokens / (rows * sum(lengths.values())),
                      "seconds": seconds}
  results["ratio_examples_per_s"] = (results["flan-tune"]["examples_per_s"]
                                     / results["plain seqio"]["examples_per_s"])
  return results


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--mixture", default="flan_offline")
  parser.add_argument("--rows", type=int, default=300, help="packed rows timed")
  # tf.data fills a member's 1000-example shuffle buffer the first time the mixture
  # samples it; warm up until (nearly) every member has been sampled.
  parser.add_argument("--warmup_rows", type=int, default=800)
  parser.add_argument("--lengths", type=parse_lengths, default="inputs=512,targets=128")
  parser.add_argument("--json", default=None)
  parser.add_argument("--train_input", action="store_true",
                      help="measure the trainer's input path (TrainInput) instead")
  parser.add_argument("--batch_sizes", default="8", help="--train_input: comma-separated")
  parser.add_argument("--packers", default=",".join(packing.PACKERS),
                      help="--train_input: comma-separated")
  parser.add_argument("--shuffle", default="off", help="--train_input: off, on or off,on")
  parser.add_argument("--batches", type=int, default=20, help="--train_input: batches timed")
  parser.add_argument("--warmup_batches", type=int, default=3)
  args = parser.parse_args()
  if args.train_input:
    return main_train_input(args)
  results = run(args.mixture, args.rows, args.lengths, args.warmup_rows)
  print(f"mixture {args.mixture}, {args.rows} packed rows after {args.warmup_rows}, lengths "
        f"{args.lengths}, {os.cpu_count()} CPUs")
  print(f"{'pipeline':<12} {'start-up s':>10} {'examples/s':>11} {'tokens/s':>10} "
        f"{'rows/s':>8} {'non-pad':>8}")
  for label in ("flan-tune", "plain seqio"):
    r = results[label]
    print(f"{label:<12} {r['startup_s']:>10.1f} {r['examples_per_s']:>11.0f} "
          f"{r['tokens_per_s']:>10.0f} {r['packed_rows_per_s']:>8.1f} "
          f"{100 * r['non_padding_fraction']:>7.1f}%")
  print(f"ratio flan-tune / plain seqio (examples/s): {results['ratio_examples_per_s']:.2f}x")
  if args.json:
    with open(args.json, "w") as f:
      json.dump(results, f, indent=2)


def main_train_input(args):
  results = []
  print(f"mixture {args.mixture}, lengths {args.lengths}, {args.batches} batches timed after "
        f"{args.warmup_batches}, {os.cpu_count()} CPUs")
  print(f"{'packer':<9} {'batch':>5} {'shuffle':>7} {'start-up s':>10} {'warm-up s':>9} "
        f"{'batches/s':>9} {'examples/s':>10} {'efficiency':>10} {'inputs':>7} {'targets':>7} "
        f"{'ex/row':>6}")
  for shuffle in args.shuffle.split(","):
    for batch_size in map(int, args.batch_sizes.split(",")):
      for packer in args.packers.split(","):
        r = measure_train_input(args.mixture, args.lengths, batch_size, args.batches,
                                args.warmup_batches, packer, shuffle == "on")
        results.append(r)
        print(f"{packer:<9} {batch_size:>5} {shuffle:>7} {r['startup_s']:>10.1f} "
              f"{r['warmup_s']:>9.1f} {r['batches_per_s']:>9.2f} {r['examples_per_s']:>10.0f} "
              f"{100 * r['efficiency']:>9.1f}% {100 * r['inputs_fill']:>6.1f}% "
              f"{100 * r['targets_fill']:>6.1f}% {r['examples_per_row']:>6.2f}", flush=True)
  if args.json:
    with open(args.json, "w") as f:
      json.dump(results, f, indent=2)


if __name__ == "__main__":
  main()
