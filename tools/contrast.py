"""`make contrast`: instruction tuning set against its neighbours, from one baseline.

On the offline collection, from `make demo`'s pretrained T5 baseline (made here if
RUN_DIR lacks it):
  (a) flan         FLAN instruction tuning on every cluster but HELD_OUT (the demo's seed 0);
  (b) single_task  full fine-tuning on one held-in task, TASK;
  (c) prompt       prompt tuning on TASK (runs/prompt_tuning.gin);
  (d) lora         LoRA on TASK (runs/lora.gin);
  (e) t5_baseline  the baseline itself.
Each is evaluated zero-shot on every family (`flan_offline_zs_eval`), and the tasks are
grouped as FLAN sees them: TASK's family, the other held-in families, the held-out
cluster. `flan-tune compare` then gives each group's mean with paired 95% intervals
against the baseline, and this script adds each method's trained parameters, optimizer
state and training time. Everything goes to RUN_DIR/contrast/.

The single-task runs train the task's zero-shot-with-options variant for STEPS steps at
the demo's batch 8 and lengths 256/64; the learning rates are each method's usual order
at this tiny scale (full 1e-2 as the demo with Adafactor; LoRA 5e-3 with AdamW, as
runs/lora.gin; prompt 0.3 with Adafactor, as Lester et al.).
"""

import argparse
import dataclasses
import json
import os
import sys
import time

import demo  # tools/: the demo's stages and stage runner

from flan_tune.evaluation import compare as compare_lib
from flan_tune.evaluation import results as results_lib

METHODS = {  # name -> (gin file, extra flags)
    "single_task": ("runs/finetune.gin", ["--gin.optimizers.constant_schedule.learning_rate=1e-2"]),
    "prompt": ("runs/prompt_tuning.gin", ["--gin.PROMPT_LENGTH=20"]),
    "lora": ("runs/lora.gin", ["--gin.optimizers.constant_schedule.learning_rate=5e-3"]),
}
LENGTHS = "{'inputs': 256, 'targets': 64}"


def single_task_stage(run_dir: str, baseline: str, method: str, task: str, steps: int):
  gin_file, flags = METHODS[method]
  return (f"{method} on {task}", demo.flan_tune(
      "train", f"--gin_file={gin_file}", f"--gin.INITIAL_CHECKPOINT_PATH='{baseline}'",
      f"--gin.MODEL_DIR='{os.path.join(run_dir, method)}'",
      f"--gin.MIXTURE_OR_TASK_NAME='{task}_zs_opt'", f"--gin.TRAIN_STEPS={steps}",
      "--gin.BATCH_SIZE=8", f"--gin.TASK_FEATURE_LENGTHS={LENGTHS}",
      f"--gin.CheckpointConfig.save_interval_steps={steps}", "--gin.train.log_every=50",
      *flags))


def eval_stage(checkpoint: str, name: str, out_dir: str, examples: int):
  return (f"evaluate {name}", demo.flan_tune(
      "eval", "--gin_file=runs/eval.gin", f"--gin.CHECKPOINT_PATH='{checkpoint}'",
      f"--gin.EVAL_OUTPUT_DIR='{out_dir}'", f"--gin.MODEL_NAME='{name}'",
      f"--gin.MIXTURE_OR_TASK_NAME='{demo.EVAL_MIXTURE}'",
      f"--gin.TASK_FEATURE_LENGTHS={demo.EVAL_LENGTHS}", f"--gin.NUM_EXAMPLES={examples}",
      f"--gin.BATCH_SIZE={examples}"))


def grouped(results: results_lib.EvalResults, flan: results_lib.EvalResults, task: str,
            held_out: str) -> results_lib.EvalResults:
  """`results` with each task's cluster replaced by its group as FLAN sees it, and its
  held-out flag by FLAN's, so every model is compared over the same three groups."""
  tasks = {}
  for name, result in results.tasks.items():
    if result.family == task:
      group = f"target task ({task})"
    elif flan.tasks[name].held_out:
      group = f"held-out cluster ({held_out})"
    else:
      group = "other held-in tasks"
    tasks[name] = dataclasses.replace(result, cluster=group,
                                      held_out=flan.tasks[name].held_out)
  return dataclasses.replace(results, tasks=tasks)


def method_costs(run_dir: str, baseline: str, timings: dict[str, float]) -> list[dict]:
  """Trained parameters and per-device optimizer state of each method (flan-tune plan's
  numbers on one device), and its training stage's wall time (start-up included; None
  for a run trained by an earlier invocation)."""
  import gin

  from flan_tune.launch_config import parse_gin
  from flan_tune.model import peft as peft_lib
  from flan_tune.runtime import model_setup
  from flan_tune.training import memory_plan, optimizers

  config = model_setup.initial_config(baseline)
  rows = []
  for name in ("flan", "single_task", "prompt", "lora"):
    gin.clear_config()
    gin_file, flags = METHODS.get(name, ("runs/finetune.gin", []))
    parse_gin([gin_file], [flag.removeprefix("--gin.") for flag in flags])
    peft = peft_lib.PeftConfig()  # the method gin's bindings, and its optimizer below
    plan = memory_plan.plan(config, optimizers.planned(), {"data": 1, "model": 1},
                            "standard", 8, {"inputs": 256, "targets": 64}, peft=peft)
    rows.append({"method": name, "trained_params": plan.trainable_params,
                 "optimizer_bytes": plan.bytes["optimizer"],
                 "train_seconds": timings.get(name)})
  gin.clear_config()
  return rows


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--run_dir", default="runs/demo", help="shared with `make demo`")
  parser.add_argument("--held_out", default="nli")
  parser.add_argument("--task", default="sentiment_reviews", help="the single held-in task")
  parser.add_argument("--steps", type=int, default=300, help="single-task training steps")
  parser.add_argument("--devices", type=int, default=os.cpu_count() or 1)
  parser.add_argument("--quick", action="store_true", help="tiny stages: a smoke test")
  args = parser.parse_args(argv)
  steps = 10 if args.quick else args.steps
  examples = demo.sizes(args.quick)[2]
  pretrain, flan_stage, demo_eval, _ = demo.stages(args.run_dir, args.held_out, args.devices,
                                                   args.quick, seeds=1)
  baseline = os.path.join(args.run_dir, "t5_baseline")
  out = os.path.join(args.run_dir, "contrast")
  flan = demo.flan_name(0)
  evals = {name: os.path.join(args.run_dir, demo.EVAL_DIR, name)
           for name in ("t5_baseline", flan)}
  stages = [pretrain, flan_stage]
  if not all(map(_results_file, evals.values())):
    stages.append(demo_eval)
  trains = {flan_stage[0]: ("flan", os.path.join(args.run_dir, flan))}
  for method in METHODS:
    evals[method] = os.path.join(out, method, "eval")
    stage = single_task_stage(out, baseline, method, args.task, steps)
    stages.append(stage)
    trains[stage[0]] = (method, os.path.join(out, method))
    if not _results_file(evals[method]):
      stages.append(eval_stage(os.path.join(out, method), method, evals[method], examples))
  # A run that finished before this invocation resumes at once: its time is not measured.
  untimed = {name for name, (_, model_dir) in trains.items()
             if os.path.isdir(os.path.join(model_dir, "checkpoints"))}
  began = time.monotonic()
  timings = demo.run_stages(stages, args.devices, args.run_dir)
  if timings is None:
    return 1
  demo.print_timings(timings, out)
  seconds = {trains[name][0]: s for name, s in timings if name in trains and name not in untimed}

  loaded = {"flan" if name == flan else name: results_lib.load(_results_file(path))
            for name, path in evals.items()}
  renamed = [dataclasses.replace(grouped(r, loaded["flan"], args.task, args.held_out),
                                 model=name) for name, r in loaded.items()]
  comparison = compare_lib.compare(renamed, baseline="t5_baseline")
  written = compare_lib.write_all(comparison, out)
  costs = method_costs(args.run_dir, baseline, seconds)
  with open(os.path.join(out, "methods.json"), "w") as f:
    json.dump({"command": " ".join(["tools/contrast.py", *(argv or sys.argv[1:])]),
               "methods": costs, "seconds": time.monotonic() - began}, f, indent=2)
  print(compare_lib.to_terminal(comparison))
  print(f"{'method':<12}{'trained params':>16}{'optimizer':>12}{'training':>10}")
  for row in costs:
    took = "earlier" if row["train_seconds"] is None else f"{row['train_seconds']:.0f} s"
    print(f"{row['method']:<12}{row['trained_params']:>16,}"
          f"{row['optimizer_bytes'] / 2**10:>9.1f} KiB{took:>10}")
  print(f"written: {', '.join(sorted(written.values()))}, {out}/methods.json")
  return 0


def _results_file(directory: str) -> str | None:
  """The newest results_<step>.json in `directory`."""
  if not os.path.isdir(directory):
    return None
  found = [f for f in os.listdir(directory) if f.startswith("results_") and f.endswith(".json")]
  steps = sorted(found, key=lambda f: int(f[len("results_"):-len(".json")])
                 if f[len("results_"):-len(".json")].isdigit() else -1)
  return os.path.join(directory, steps[-1]) if steps else None


if __name__ == "__main__":
  sys.exit(main())
