"""`flan-tune eval`: evaluates one checkpoint (T5X's eval.py), configured by gin.

The checkpoint is anything `train.initial_checkpoint_path` accepts: a flan-tune model
directory, a transformers T5 directory, or a training run (its MODEL_DIR, latest step, or
one checkpoints/<step>). For a run, the families of the mixture it was trained on count
as held-in; every other task is held-out.
"""

import logging
import os

import gin
import jax

from flan_tune.evaluation import results as results_lib
from flan_tune.evaluation.evaluator import EvalConfig, Evaluator
from flan_tune.model.config import T5Config
from flan_tune.runtime import model_setup, partitioning
from flan_tune.runtime.model import EncoderDecoderModel

TENSORBOARD_DIR = os.path.join("tensorboard", "eval")


@gin.configurable
def evaluate(checkpoint_path: str = gin.REQUIRED, output_dir: str = gin.REQUIRED, *,
             model_name: str | None = None, eval_config: EvalConfig | None = None,
             trained_on: str | None = None,
             mesh_config: partitioning.MeshConfig | None = None) -> results_lib.EvalResults:
  """Evaluates and writes results_<step>.json (+ predictions) into output_dir.

  `model_name` labels the results for `compare` (default: the checkpoint's directory
  name); `trained_on` overrides the training mixture read from a run's checkpoint.
  `mesh_config` (train's `MeshConfig` bindings) splits the params and batches over the
  devices as training did; the default is data parallelism over every device."""
  eval_config = eval_config or EvalConfig()
  mesh_config = mesh_config or partitioning.MeshConfig()
  base = model_setup.initial_config(checkpoint_path, "evaluate.checkpoint_path")
  config = model_setup.reconcile(T5Config(), model_setup.gin_bound_fields(), base,
                                 f"checkpoint {checkpoint_path!r}")
  model = EncoderDecoderModel(model_setup.network_for(checkpoint_path, config))
  evaluator = Evaluator(eval_config, model, output_dir, mesh_config.make_mesh(),
                        mesh_config.axis_rules())
  params = model_setup.load_initial_params(checkpoint_path, config,
                                           evaluator.sharded.param_shardings)
  step = model_setup.checkpoint_step(checkpoint_path)
  results = evaluator.evaluate(
      params, model_name=model_name or _name_of(checkpoint_path), step=step,
      checkpoint=os.path.abspath(checkpoint_path),
      trained_on=trained_on or model_setup.trained_on(checkpoint_path))
  write_tensorboard(results, os.path.join(output_dir, TENSORBOARD_DIR), step or 0)
  print(summary(results), flush=True)
  return results


def _name_of(path: str) -> str:
  parts = os.path.normpath(os.path.abspath(path)).split(os.sep)
  if parts[-1].isdigit() and len(parts) > 2 and parts[-2] == "checkpoints":
    return parts[-3]
  return parts[-1]


def summary(results: results_lib.EvalResults) -> str:
  """A few lines: overall, held-in, held-out and per-cluster means."""
  aggregates = results.aggregates()
  lines = [f"{results.model} (step {results.step}) on {results.mixture}/{results.split}: "
           f"{len(results.tasks)} tasks"]
  groups = [("overall", aggregates["overall"])] + list(aggregates["by_split"].items()) + [
      (f"  {name}", value) for name, value in aggregates["by_cluster"].items()]
  for name, value in groups:
    lines.append(f"  {name:<24} {value['score']:6.1f}  (normalized {value['normalized']:6.1f}, "
                 f"{value['tasks']} tasks)")
  return "\n".join(lines)


def write_tensorboard(results: results_lib.EvalResults, directory: str, step: int) -> None:
  """Aggregates and each task's primary metric as TensorBoard scalars (process 0)."""
  if jax.process_index() != 0:
    return
  from clu import metric_writers

  aggregates = results.aggregates()
  scalars = {f"eval/{name}": value["score"] for name, value in (
      [("overall", aggregates["overall"])] + list(aggregates["by_split"].items()) +
      [(f"cluster/{c}", v) for c, v in aggregates["by_cluster"].items()])}
  scalars.update({f"eval/normalized/{name}": value["normalized"] for name, value in (
      [("overall", aggregates["overall"])] + list(aggregates["by_split"].items()))})
  scalars.update({f"eval_task/{name}": task.score for name, task in results.tasks.items()})
  writer = metric_writers.SummaryWriter(directory)
  writer.write_scalars(step, scalars)
  writer.close()
  logging.info("eval scalars written to %s", directory)
