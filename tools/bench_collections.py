"""The real collections at full task count, generated: registration, first batch, host
memory and steady batches/s, beside loading the same files whole into Python.

Set-up (tools/collection_files.py writes the published layouts with generated text):
- Natural Instructions v2: 1,616 task files as the repository has them (757 train, 119
  test, 740 excluded), each with log-uniformly 500-6,500 instances of 20-200 words (about
  2.7 GB);
- FLAN 2022 submix files: JSONL.gz named as the public mirror names them, one per submix
  and template type, with the collection's task counts (flan2021 66, t0 193, niv2 1,554,
  cot 9, dialog 3; cot and dialog in the opt styles only) and --submix_rows rows.
Tasks tokenize with SentencePiece (--vocabulary_file; the offline collection's model by
default), batches of --batch_size rows at --lengths, packed best fit, --num_workers
input workers.

Each measurement runs in a subprocess of its own, and each host memory figure is that
process's peak RSS with its input workers (sampled every 50 ms; `imports_rss_gb` is the
process after importing seqio and TensorFlow, before any data):
- `cold`: registration with an empty index cache (every file scanned once);
- `warm`: registration again (the cached index), then the Grain training input: seconds
  to the first batch and steady batches/s over at least --min_seconds;
- `whole`: the previous way for files people load themselves, every file read into
  Python (json.load of each task file; every submix row parsed into a list);
- `row_groups` (the submix as Parquet, `flan2022_parquet`): training reading each drawn
  row from its Parquet row group (1,000 rows) instead of the JSONL copy `cold` writes.

Usage: python tools/bench_collections.py [--collections niv2,flan2022,flan2022_parquet]
           [--json out.json]
"""

import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
TOOLS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(TOOLS))
sys.path.insert(0, TOOLS)

import collection_files  # noqa: E402

NIV2_SPLIT = {"num_train": 757, "num_test": 119, "num_excluded": 740}
SUBMIX_TASKS = {"flan": 66, "t0": 193, "niv2": 1554, "cot": 9, "dialog": 3}
SUBMIX_NAMES = {"flan": "flan2021", "t0": "t0", "niv2": "niv2", "cot": "cot", "dialog": "dialog"}
OPT_ONLY = ("cot", "dialog")


def write_niv2(root: str, instances: tuple) -> None:
  if not os.path.exists(os.path.join(root, "splits", "default", "excluded_tasks.txt")):
    collection_files.write_niv2(root, **NIV2_SPLIT, instances=instances, input_words=(20, 200))


def write_submix(root: str, rows: int) -> dict:
  """{submix: [paths]}, rows shared out by FLAN 2022's weights."""
  weights = {"flan": 0.4, "t0": 0.32, "niv2": 0.2, "cot": 0.05, "dialog": 0.03}
  os.makedirs(root, exist_ok=True)
  files = {}
  for source, weight in weights.items():
    types = ("zs_opt", "fs_opt") if source in OPT_ONLY else collection_files.TEMPLATE_TYPES
    per_file = max(1, int(rows * weight / len(types)))
    paths = []
    for template_type in types:
      path = os.path.join(root, f"{source}_{template_type}_train.jsonl.gz")
      if not os.path.exists(path):
        rng = random.Random(f"{source}/{template_type}")
        with gzip.open(path + ".partial", "wt", encoding="utf-8") as f:
          for start in range(0, per_file, 10000):
            chunk = collection_files.submix_rows(rng, source, template_type,
                                                 SUBMIX_TASKS[source],
                                                 min(10000, per_file - start), (20, 300))
            f.writelines(json.dumps(row) + "\n" for row in chunk)
        os.replace(path + ".partial", path)
      paths.append(path)
    files[SUBMIX_NAMES[source]] = paths
  return files


def as_parquet(files: dict, root: str, row_group_size: int = 1000) -> dict:
  """The same rows as Parquet files with `row_group_size`-row groups."""
  import pyarrow as pa
  import pyarrow.parquet as pq

  os.makedirs(root, exist_ok=True)
  converted = {}
  for submix, paths in files.items():
    converted[submix] = []
    for path in paths:
      target = os.path.join(root, os.path.basename(path).replace(".jsonl.gz", ".parquet"))
      if not os.path.exists(target):
        with gzip.open(path, "rt", encoding="utf-8") as f:
          table = pa.Table.from_pylist([json.loads(line) for line in f])
        pq.write_table(table, target + ".partial", row_group_size=row_group_size)
        os.replace(target + ".partial", target)
      converted[submix].append(target)
  return converted


def register(collection: str, data: str, vocabulary_file: str, phase: str):
  if collection == "niv2":
    from flan_tune_tasks.natural_instructions import natural_instructions

    names = natural_instructions(data, prefix="bench_niv2", vocabulary_file=vocabulary_file)
    return names["mixture"], len(names["train"]) + len(names["test"])
  from flan_tune_tasks.flan2022 import flan2022_submix

  names = flan2022_submix(json.loads(data), prefix="bench_flan2022",
                          vocabulary_file=vocabulary_file, copy_parquet=phase != "row_groups")
  return names["mixture"], sum(len(v) for v in names["tasks"].values())


def load_whole(collection: str, data: str) -> int:
  """The files read into Python, as a loader that reads its files whole keeps them."""
  kept = []
  if collection == "niv2":
    for which in ("train", "test"):
      with open(os.path.join(data, "splits", "default", f"{which}_tasks.txt")) as f:
        for name in f.read().split():
          with open(os.path.join(data, "tasks", f"{name}.json")) as task:
            kept.append(json.load(task))
    return sum(len(task["Instances"]) for task in kept)
  for paths in json.loads(data).values():
    for path in paths:
      if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        kept.extend(pq.read_table(path).to_pylist())
        continue
      with gzip.open(path, "rt", encoding="utf-8") as f:
        kept.extend(json.loads(line) for line in f)
  return len(kept)


def measure(args) -> dict:
  """One measurement, in this subprocess."""
  from bench_scale import PeakRss

  rss = PeakRss()
  import seqio  # noqa: F401  (imported before the clock starts, as a trainer has it)
  import flan_tune.tasks.registry  # noqa: F401

  import psutil

  # What seqio and TensorFlow take before any data: the figures below include it.
  result = {"collection": args.collection, "phase": args.phase,
            "imports_rss_gb": psutil.Process().memory_info().rss / 2**30}
  start = time.perf_counter()
  if args.phase == "whole":
    result["instances"] = load_whole(args.collection, args.data)
    result["load_s"] = time.perf_counter() - start
    result["max_rss_gb"] = rss.stop()
    return result
  mixture, tasks = register(args.collection, args.data, args.vocabulary_file, args.phase)
  result.update(registration_s=time.perf_counter() - start, tasks=tasks)
  result["registered_rss_gb"] = rss.peak / 2**30
  if args.phase in ("warm", "row_groups"):
    from flan_tune.training.input_pipeline import DataIterator, TrainInput

    inputs, targets = (int(x.split("=")[1]) for x in args.lengths.split(","))
    cfg = TrainInput(mixture_or_task_name=mixture, batch_size=args.batch_size,
                     task_feature_lengths={"inputs": inputs, "targets": targets},
                     num_workers=args.num_workers)
    start = time.perf_counter()
    iterator = DataIterator(cfg)
    next(iterator)
    result["first_batch_s"] = time.perf_counter() - start
    result["members"] = len(iterator.plan.members)
    start, count = time.perf_counter(), 0
    while count < 5 or time.perf_counter() - start < args.min_seconds:
      next(iterator)
      count += 1
    result["batches_per_s"] = count / (time.perf_counter() - start)
    iterator.close()
  result["max_rss_gb"] = rss.stop()
  return result


def run(args, collection: str, data: str, phase: str, cache: str) -> dict:
  command = [sys.executable, os.path.abspath(__file__), "--_measure", "--collection",
             collection, "--data", data, "--phase", phase, "--lengths", args.lengths,
             "--batch_size", str(args.batch_size), "--num_workers", str(args.num_workers),
             "--min_seconds", str(args.min_seconds), "--vocabulary_file", args.vocabulary_file]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", FLAN_TUNE_CACHE_DIR=cache)
  done = subprocess.run(command, capture_output=True, text=True, env=env)
  if done.returncode:
    raise SystemExit(f"{phase} {collection} failed:\n{done.stderr[-3000:]}")
  result = json.loads(done.stdout.strip().splitlines()[-1])
  print(json.dumps(result), flush=True)
  return result


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--collections", default="niv2,flan2022,flan2022_parquet")
  parser.add_argument("--niv2_instances", default="500,6500")
  parser.add_argument("--submix_rows", type=int, default=1_000_000)
  parser.add_argument("--lengths", default="inputs=1024,targets=128")
  parser.add_argument("--batch_size", type=int, default=32)
  parser.add_argument("--num_workers", type=int, default=1)
  parser.add_argument("--min_seconds", type=float, default=30.0)
  parser.add_argument("--data_dir", default=os.path.join(tempfile.gettempdir(),
                                                         "bench_collections"))
  parser.add_argument("--vocabulary_file", default=os.path.join(
      os.path.dirname(TOOLS), "tasks", "offline", "offline_spm.model"),
                      help="SentencePiece model the tasks tokenize with (default: the offline "
                           "collection's, 4,000 pieces)")
  parser.add_argument("--json")
  parser.add_argument("--_measure", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--collection", help=argparse.SUPPRESS)
  parser.add_argument("--data", help=argparse.SUPPRESS)
  parser.add_argument("--phase", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args._measure:  # pylint: disable=protected-access
    print(json.dumps(measure(args)))
    return
  report = {"command": " ".join(sys.argv), "runs": []}
  for collection in args.collections.split(","):
    if collection == "niv2":
      low, high = (int(x) for x in args.niv2_instances.split(","))
      data = os.path.join(args.data_dir, f"niv2_{low}_{high}")
      write_niv2(data, (low, high))
    else:
      root = os.path.join(args.data_dir, f"flan2022_{args.submix_rows}")
      files = write_submix(root, args.submix_rows)
      if collection == "flan2022_parquet":
        files = as_parquet(files, root + "_parquet")
      data = json.dumps(files)
    phases = ["cold", "warm", "whole"]
    if collection == "flan2022_parquet":
      phases.insert(2, "row_groups")
    with tempfile.TemporaryDirectory() as cache:
      for phase in phases:
        report["runs"].append(run(args, collection, data, phase, cache))
  if args.json:
    with open(args.json, "w") as f:
      json.dump(report, f, indent=2)


if __name__ == "__main__":
  main()
