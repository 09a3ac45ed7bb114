"""The training input at FLAN scale: the Grain path against the old tf.data path, in one run.

Set-up (as issue 13 asks): N generated tasks, each a JSONL file of --examples examples
with fixed answer options and six templates (one inverted), registered with
`register_task` (5 trained styles each: zs/fs with and without options, and zs_inv) and
mixed with FLAN's style weights: about 5 * N members. Batches of --batch_size at
--lengths, packed best fit.

Each configuration runs in a subprocess of its own, so each host memory figure (peak
RSS of the process and its input workers together, sampled every 50 ms) is its own:
- registration: seconds to register the N tasks and the mixture;
- first batch: seconds from building the iterator to holding the first batch;
- steady batches/s after the first --warmup batches, over at least --batches batches and
  --min_seconds (so over many packing windows: a window holds ~1,000 rows here);
- resume: seconds from restoring a saved position to holding the next batch, at batch 0
  and far into the stream. For Grain the far position is the (window, row) of batch
  100,000 (window = 100,000 * rows per batch / rows per window, measured); for tf.data,
  whose resume replays every batch, it is measured at --old_resume_batches and the replay
  cost per batch extrapolated to 100,000 (marked "est.").
The old path runs at the sizes in --old_tasks (it needs minutes and GBs there).

It also packs the same tokenized examples with flan-tune's packer (best fit over 32 open
rows, in windows of 4096) and with Grain's BestFitPackIterDataset and
FirstFitPackIterDataset, and reports packing efficiency and examples/s.

Usage: python tools/bench_scale.py [--tasks 500,2000] [--old_tasks 500,2000]
           [--workers 1,2] [--json out.json]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

LABELS = ["yes", "no", "maybe"]
FAR_BATCH = 100_000


def write_tasks(directory: str, num_tasks: int, examples: int) -> None:
  """num_tasks JSONL files of short generated questions (deterministic)."""
  import random

  os.makedirs(directory, exist_ok=True)
  for t in range(num_tasks):
    path = os.path.join(directory, f"task{t:05d}.jsonl")
    if os.path.exists(path):
      continue
    rng = random.Random(t)
    words = ["river", "stone", "lamp", "cloud", "seven", "market", "winter", "song",
             "garden", "letter", "north", "bridge", "copper", "silent", "harbor"]
    with open(path, "w") as f:
      for i in range(examples):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(8, 40)))
        f.write(json.dumps({"text": f"{text} ({t}.{i})", "label": rng.choice(LABELS)}) + "\n")


def register(directory: str, num_tasks: int) -> str:
  """Registers the tasks and their mixture; returns the mixture's name."""
  from flan_tune.mixtures import register_mixture
  from flan_tune.tasks import JsonlSource, Template, register_task
  from flan_tune_tasks.offline.vocabulary import offline_vocabulary

  templates = [Template("{text}\n\nIs the statement true?", "{label}"),
               Template("Statement: {text}\nTrue? {options_}", "{label}"),
               Template("Read this: {text}\n\nAnswer yes, no or maybe.", "{label}"),
               Template("{text}\n\nQuestion: does it hold?\nAnswer:", "{label}"),
               Template("Consider: {text}. Does it hold?", "{label}"),
               Template("Answer: {label}\n\nWrite a statement with this answer.", "{text}",
                        inverted=True)]
  names = []
  vocabulary = offline_vocabulary()
  for t in range(num_tasks):
    name = f"scale_task{t:05d}"
    register_task(name=name, source=JsonlSource({"train": os.path.join(
        directory, f"task{t:05d}.jsonl")}), templates=templates, cluster=f"c{t % 10}",
                  options=LABELS, vocabulary=vocabulary, rank_classification=False)
    names.append(name)
  register_mixture("scale_mixture", names)
  return "scale_mixture"


class PeakRss:
  """Peak RSS of this process and its children, sampled on a thread."""

  def __init__(self):
    import psutil

    self.peak, self._process, self._stop = 0, psutil.Process(), False
    self._thread = threading.Thread(target=self._run, daemon=True)
    self._thread.start()

  def _run(self):
    import psutil

    while not self._stop:
      try:
        total = self._process.memory_info().rss + sum(
            c.memory_info().rss for c in self._process.children(recursive=True))
      except psutil.Error:
        continue
      self.peak = max(self.peak, total)
      time.sleep(0.05)

  def stop(self) -> float:
    self._stop = True
    self._thread.join()
    return self.peak / 2**30


def measure(args) -> dict:
  """One configuration, in this (sub)process."""
  rss = PeakRss()
  start = time.perf_counter()
  import flan_tune_tasks.offline.vocabulary  # noqa: F401  (the tokenizer; registers nothing)
  from flan_tune.training.input_pipeline import DataIterator, TrainInput, make_dataset

  imported = time.perf_counter()
  mixture = register(args.data_dir, args.num_tasks)
  result = {"tasks": args.num_tasks, "path": args.path, "workers": args.num_workers,
            "registration_s": time.perf_counter() - imported}
  inputs, targets = (int(x.split("=")[1]) for x in args.lengths.split(","))
  cfg = TrainInput(mixture_or_task_name=mixture, batch_size=args.batch_size, seed=0,
                   task_feature_lengths={"inputs": inputs, "targets": targets},
                   num_workers=args.num_workers)
  start = time.perf_counter()
  if args.path == "grain":
    iterator = DataIterator(cfg)
    assert iterator.grain_path
    result["members"] = len(iterator.plan.members)
  else:  # the previous DataIterator: tf.data, resumed by skipping
    iterator = make_dataset(cfg).as_numpy_iterator()
  next(iterator)
  result["first_batch_s"] = time.perf_counter() - start
  for _ in range(args.warmup):
    next(iterator)
  # Over whole packing windows too: at least --batches batches and --min_seconds.
  start, count = time.perf_counter(), 0
  while count < args.batches or time.perf_counter() - start < args.min_seconds:
    next(iterator)
    count += 1
  result["batches_per_s"] = count / (time.perf_counter() - start)
  result["max_rss_gb"] = rss.stop()
  if args.resume and args.path == "grain":
    result.update(grain_resume(iterator, cfg, args, DataIterator))
  elif args.resume:
    result.update(tfdata_resume(cfg, args, make_dataset))
  if args.path == "grain":
    iterator.close()
  return result


def _timed_first(make_iterator) -> float:
  """Seconds from building (and restoring) an iterator to its first batch."""
  start = time.perf_counter()
  iterator = make_iterator()
  next(iterator)
  seconds = time.perf_counter() - start
  if hasattr(iterator, "close"):
    iterator.close()
  return seconds


def grain_resume(iterator, cfg, args, data_iterator) -> dict:
  state = iterator.state()
  iterator.close()
  window, row = state["shards"][0]
  rows_per_window = (state["batches_consumed"] * args.batch_size - row) / max(window, 1)
  far_window = int(FAR_BATCH * args.batch_size / rows_per_window)

  def restored(position, consumed):
    fresh = data_iterator(cfg)
    fresh.restore({**state, "batches_consumed": consumed, "shards": [position]})
    return fresh

  return {"resume_0_s": _timed_first(lambda: restored([0, 0], 0)),
          "resume_100k_s": _timed_first(lambda: restored([far_window, 0], FAR_BATCH)),
          "resume_100k_window": far_window}


def tfdata_resume(cfg, args, make_dataset) -> dict:
  zero = _timed_first(lambda: make_dataset(cfg).as_numpy_iterator())
  replayed = _timed_first(
      lambda: make_dataset(cfg).skip(args.old_resume_batches).as_numpy_iterator())
  per_batch = (replayed - zero) / args.old_resume_batches
  return {"resume_0_s": zero, f"resume_{args.old_resume_batches}_s": replayed,
          "resume_100k_s_est": zero + per_batch * FAR_BATCH}


def compare_packers(args) -> dict:
  """flan-tune's windowed best fit against Grain's packers on the same examples."""
  import grain
  import numpy as np

  import flan_tune_tasks.offline  # noqa: F401
  from flan_tune.training import grain_input, packing
  from flan_tune.training.input_pipeline import TrainInput, grain_plan

  lengths = {"inputs": 256, "targets": 64}
  cfg = TrainInput(mixture_or_task_name="flan_offline_no_nli", task_feature_lengths=lengths)
  plan, _ = grain_plan(cfg)
  tokenize = grain_input.TokenizeExample(plan.members, lengths)
  examples = [tokenize(plan.sampler[i]) for i in range(args.pack_examples)]
  results = {}

  def ours():
    pack = grain_input.PackWindow(lengths, pack=True)
    return [pack(examples[i:i + grain_input.WINDOW])
            for i in range(0, len(examples), grain_input.WINDOW)]

  def theirs(kind):
    ds = grain.MapDataset.source([{"inputs": a, "targets": b} for a, b in examples])
    packer = getattr(grain.experimental, kind)
    return list(packer(ds.to_iter_dataset(), length_struct=lengths, num_packing_bins=32,
                       **({"shuffle_bins": False} if kind.startswith("Best") else {})))

  for name, run in (("flan-tune best fit (32 rows, windows of 4096)", ours),
                    ("grain BestFitPackIterDataset (32 bins)",
                     lambda: theirs("BestFitPackIterDataset")),
                    ("grain FirstFitPackIterDataset (32 bins)",
                     lambda: theirs("FirstFitPackIterDataset"))):
    start = time.perf_counter()
    rows = run()
    seconds = time.perf_counter() - start
    if name.startswith("flan-tune"):
      stats = packing.packing_stats(rows)
      efficiency, count = stats["efficiency"], stats["rows"]
    else:
      count = len(rows)
      used = [sum(int((r[f"{k}_segment_ids"] != 0).sum()) for r in rows) / lengths[k]
              for k in ("inputs", "targets")]
      efficiency = max(used) / count
    results[name] = {"efficiency": efficiency, "rows": count,
                     "examples_per_s": len(examples) / seconds}
  del np
  return results


def run_subprocess(args, **overrides) -> dict:
  command = [sys.executable, os.path.abspath(__file__), "--_measure",
             "--data_dir", overrides["data_dir"], "--num_tasks", str(overrides["num_tasks"]),
             "--path", overrides["path"], "--num_workers", str(overrides.get("num_workers", 0)),
             "--lengths", args.lengths, "--batch_size", str(args.batch_size),
             "--batches", str(overrides.get("batches", args.batches)),
             "--warmup", str(args.warmup), "--old_resume_batches", str(args.old_resume_batches),
             "--min_seconds", str(overrides.get("min_seconds", args.min_seconds))]
  if overrides.get("resume"):
    command.append("--resume")
  output = subprocess.run(command, check=True, capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")).stdout
  result = json.loads(output.strip().splitlines()[-1])
  print(json.dumps(result), flush=True)
  return result


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--tasks", default="500,2000")
  parser.add_argument("--old_tasks", default="500,2000")
  parser.add_argument("--workers", default="1,2")
  parser.add_argument("--examples", type=int, default=300)
  parser.add_argument("--lengths", default="inputs=256,targets=16")
  parser.add_argument("--batch_size", type=int, default=32)
  parser.add_argument("--batches", type=int, default=30)
  parser.add_argument("--old_batches", type=int, default=5)
  parser.add_argument("--warmup", type=int, default=3)
  parser.add_argument("--min_seconds", type=float, default=30.0)
  parser.add_argument("--old_resume_batches", type=int, default=10)
  parser.add_argument("--pack_examples", type=int, default=40960)
  parser.add_argument("--data_dir", default=os.path.join(tempfile.gettempdir(), "bench_scale"))
  parser.add_argument("--json")
  parser.add_argument("--_measure", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--num_tasks", type=int, help=argparse.SUPPRESS)
  parser.add_argument("--path", help=argparse.SUPPRESS)
  parser.add_argument("--num_workers", type=int, default=0, help=argparse.SUPPRESS)
  parser.add_argument("--resume", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args._measure:  # pylint: disable=protected-access
    print(json.dumps(measure(args)))
    return
  report = {"command": " ".join(sys.argv), "runs": [], "packers": {}}
  workers = [int(w) for w in args.workers.split(",")]
  old = {int(n) for n in args.old_tasks.split(",") if n}
  for num_tasks in (int(n) for n in args.tasks.split(",")):
    data_dir = os.path.join(args.data_dir, f"{num_tasks}x{args.examples}")
    write_tasks(data_dir, num_tasks, args.examples)
    for index, count in enumerate(workers):
      report["runs"].append(run_subprocess(args, data_dir=data_dir, num_tasks=num_tasks,
                                           path="grain", num_workers=count,
                                           resume=index == 0))
    if num_tasks in old:
      report["runs"].append(run_subprocess(
          args, data_dir=data_dir, num_tasks=num_tasks, path="tf.data",
          batches=args.old_batches, min_seconds=0, resume=num_tasks == min(old)))
  report["packers"] = compare_packers(args)
  print(json.dumps(report["packers"], indent=1))
  if args.json:
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
      json.dump(report, f, indent=1)


if __name__ == "__main__":
  main()
