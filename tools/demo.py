"""`make demo`: the whole loop on the offline collection, on a CPU, in about 15 minutes.

1. the T5 baseline: pretrain the offline T5 (gin/models/offline_demo.gin) with span
   corruption on the offline corpus;
2. FLAN-tune it on `flan_offline_no_{HELD_OUT}` (every cluster but one), data-parallel
   over the machine's CPU cores as devices, SEEDS times: the runs differ only in their
   data order and dropout (`train.seed`, `TrainInput.seed`);
3. evaluate the baseline and every run in one `flan-tune eval` (one evaluator: the
   examples are rendered and the functions compiled once) on the same zero-shot
   evaluation mixture, 120 rows per task (a three-option rank task: 39 whole examples);
4. `flan-tune compare --replicas`: the per-task table, and how far the deltas spread
   across the seeds, written into RUN_DIR/comparison.

Each stage is the `flan-tune` command a user would type; it is printed before it runs.
Rerunning resumes: finished training stages return at once.

The settings were chosen by timed runs on a 2-core machine: a small model (see the model
gin), few steps at high learning rates (rsqrt with 100 warm-up steps for pretraining;
constant 1e-2 at batch 8 for FLAN-tuning) and lengths 256/64. At this scale a seed moves
some clusters' deltas by more than their bootstrap intervals (sentiment: +35 to +55), and
a change of CPU moved the first, one-run demo's held-out delta from +14.4 to +6.9: the
spread across seeds is what a claim has to clear.
"""

import argparse
import os
import shlex
import subprocess
import sys
import time

EVAL_MIXTURE = "flan_offline_zs_eval"
EVAL_DIR = "eval"
LENGTHS = "{'inputs': 256, 'targets': 64}"
# Every evaluated example whole (seqio reports the longest as 108 / 32 tokens), and no
# more: scoring and decoding cost grows with both lengths.
EVAL_LENGTHS = "{'inputs': 128, 'targets': 32}"
SEEDS = 3  # FLAN-tuning runs that differ only in data order and dropout


def flan_tune(*args: str) -> list[str]:
  return [sys.executable, "-m", "flan_tune.cli", *args]


def stages(run_dir: str, held_out: str, devices: int, quick: bool,
           seeds: int = SEEDS) -> list[tuple]:
  """(name, argv) in order; `quick` shrinks every stage for a smoke test."""
  baseline = os.path.join(run_dir, "t5_baseline")
  pretrain_steps, finetune_steps, eval_examples = sizes(quick)
  tuned = [os.path.join(run_dir, flan_name(seed)) for seed in range(seeds)]
  return [
      ("pretrain the T5 baseline (span corruption)", flan_tune(
          "train", "--gin_file=models/offline_demo.gin", "--gin_file=runs/pretrain.gin",
          f"--gin.MODEL_DIR='{baseline}'", f"--gin.TRAIN_STEPS={pretrain_steps}",
          "--gin.BATCH_SIZE=32", f"--gin.TASK_FEATURE_LENGTHS={LENGTHS}",
          "--gin.optimizers.rsqrt_schedule.warmup_steps=100",
          f"--gin.CheckpointConfig.save_interval_steps={pretrain_steps}",
          "--gin.train.log_every=50")),
      *((f"FLAN-tune it without the {held_out} cluster, seed {seed}", flan_tune(
          "train", "--gin_file=runs/finetune.gin", f"--gin.INITIAL_CHECKPOINT_PATH='{baseline}'",
          f"--gin.MODEL_DIR='{model_dir}'", f"--gin.MIXTURE_OR_TASK_NAME='flan_offline_no_{held_out}'",
          f"--gin.TRAIN_STEPS={finetune_steps}", "--gin.BATCH_SIZE=8",
          f"--gin.TASK_FEATURE_LENGTHS={LENGTHS}",
          "--gin.optimizers.constant_schedule.learning_rate=1e-2",
          f"--gin.train.seed={seed}", f"--gin.TrainInput.seed={seed}",
          f"--gin.CheckpointConfig.save_interval_steps={finetune_steps}",
          "--gin.train.log_every=50"))
        for seed, model_dir in enumerate(tuned)),
      ("evaluate the baseline and every seed (one evaluator)", flan_tune(
          "eval", "--gin_file=runs/eval.gin",
          f"--gin.CHECKPOINT_PATH={[baseline, *tuned]!r}",
          f"--gin.EVAL_OUTPUT_DIR='{os.path.join(run_dir, EVAL_DIR)}'",
          f"--gin.MIXTURE_OR_TASK_NAME='{EVAL_MIXTURE}'",
          f"--gin.TASK_FEATURE_LENGTHS={EVAL_LENGTHS}", f"--gin.NUM_EXAMPLES={eval_examples}",
          f"--gin.BATCH_SIZE={eval_examples}")),
      ("compare", flan_tune(
          "compare", *(results_path(run_dir, name, step) for name, step in
                       [("t5_baseline", pretrain_steps)]
                       + [(flan_name(seed), finetune_steps) for seed in range(seeds)]),
          *(["--replicas"] if seeds > 1 else []), "--out", os.path.join(run_dir, "comparison"))),
  ]


def sizes(quick: bool) -> tuple[int, int, int]:
  """Pretraining steps, FLAN-tuning steps, evaluation rows per task (a rank task spends one
  row per option: 120 rows hold 39 whole three-option examples)."""
  return (20, 20, 6) if quick else (300, 450, 120)


def flan_name(seed: int) -> str:
  return f"flan_seed{seed}"


def results_path(run_dir: str, model: str, step: int) -> str:
  return os.path.join(run_dir, EVAL_DIR, model, f"results_{step}.json")


def _quote(arg: str) -> str:
  """As a shell user types it: gin strings in double quotes around single ones."""
  if "'" in arg and not any(c in arg for c in '"$`\\'):
    return f'"{arg}"'
  return shlex.quote(arg)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--run_dir", default="runs/demo")
  parser.add_argument("--held_out", default="nli", help="the cluster FLAN-tuning never sees")
  parser.add_argument("--devices", type=int, default=os.cpu_count() or 1,
                      help="CPU devices to shard training over (data parallel)")
  parser.add_argument("--seeds", type=int, default=SEEDS,
                      help="FLAN-tuning runs, seeds 0..N-1 (data order and dropout)")
  parser.add_argument("--quick", action="store_true", help="tiny stages: a smoke test")
  args = parser.parse_args(argv)
  os.makedirs(args.run_dir, exist_ok=True)
  timings = run_stages(stages(args.run_dir, args.held_out, args.devices, args.quick,
                              args.seeds), args.devices, args.run_dir)
  if timings is None:
    return 1
  print_timings(timings, args.run_dir)
  return 0


def run_stages(named_argvs, devices: int, run_dir: str) -> list[tuple[str, float]] | None:
  """Runs each (name, argv) on `devices` CPU devices, printing the command first;
  [(name, seconds)], or None after the first stage that fails. The stages share JAX's
  compilation cache in run_dir (unless JAX_COMPILATION_CACHE_DIR says where): the seeds'
  runs compile the same programs, and a rerun compiles nothing."""
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  env.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(os.path.abspath(run_dir),
                                                           "xla_cache"))
  timings = []
  for name, argv in named_argvs:
    print(f"\n=== {name}\n$ flan-tune {' '.join(map(_quote, argv[3:]))}", flush=True)
    began = time.monotonic()
    code = subprocess.call(argv, env=env)
    timings.append((name, time.monotonic() - began))
    if code:
      print(f"stage {name!r} failed (exit {code})", file=sys.stderr)
      return None
  return timings


def print_timings(timings: list[tuple[str, float]], run_dir: str) -> None:
  print("\n=== timings")
  for name, seconds in timings:
    print(f"  {seconds:7.1f} s  {name}")
  print(f"  {sum(s for _, s in timings):7.1f} s  in all; files in {run_dir}")


if __name__ == "__main__":
  sys.exit(main())
