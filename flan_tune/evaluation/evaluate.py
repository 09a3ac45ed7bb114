"""`flan-tune eval`: evaluates checkpoints (T5X's eval.py), configured by gin.

The checkpoint is anything `train.initial_checkpoint_path` accepts: a flan-tune model
directory, a transformers T5 directory, or a training run (its MODEL_DIR, latest step, or
one checkpoints/<step>). For a run, the families of the mixture it was trained on count
as held-in; every other task is held-out.
"""

import logging
import os
from collections.abc import Sequence

import gin
import jax

from flan_tune.errors import FlanTuneError
from flan_tune.evaluation import results as results_lib
from flan_tune.evaluation.evaluator import EvalConfig, Evaluator
from flan_tune.model import network
from flan_tune.model.config import T5Config
from flan_tune.runtime import model_setup, partitioning
from flan_tune.runtime.model import EncoderDecoderModel

TENSORBOARD_DIR = os.path.join("tensorboard", "eval")


@gin.configurable
def evaluate(checkpoint_path: str | Sequence[str] = gin.REQUIRED,
             output_dir: str = gin.REQUIRED, *, model_name: str | Sequence[str] | None = None,
             eval_config: EvalConfig | None = None, trained_on: str | None = None,
             mesh_config: partitioning.MeshConfig | None = None
             ) -> results_lib.EvalResults | list[results_lib.EvalResults]:
  """Evaluates and writes results_<step>.json (+ predictions) into output_dir.

  `checkpoint_path` may list several checkpoints of one architecture (the seeds of a
  recipe, the steps of a run): they share one evaluator, so the examples are rendered and
  the functions compiled once, and each writes into output_dir/<its model name>/.
  `model_name` labels the results for `compare` (default: the checkpoint's directory
  name; a list for a list); `trained_on` overrides the training mixture read from a
  run's checkpoint. `mesh_config` (train's `MeshConfig` bindings) splits the params and
  batches over the devices as training did; the default is data parallelism over every
  device."""
  paths = [checkpoint_path] if isinstance(checkpoint_path, str) else list(checkpoint_path)
  names = _model_names(paths, model_name)
  eval_config = eval_config or EvalConfig()
  mesh_config = mesh_config or partitioning.MeshConfig()
  net = _network(paths)
  model = EncoderDecoderModel(net)
  evaluator = Evaluator(eval_config, model, output_dir, mesh_config.make_mesh(),
                        mesh_config.axis_rules())
  every = []
  for path, name in zip(paths, names):
    params = model_setup.load_initial_params(path, net.config, evaluator.sharded.param_shardings)
    step = model_setup.checkpoint_step(path)
    directory = output_dir if len(paths) == 1 else os.path.join(output_dir, name)
    os.makedirs(directory, exist_ok=True)
    results = evaluator.evaluate(
        params, model_name=name, step=step, checkpoint=os.path.abspath(path),
        trained_on=trained_on or model_setup.trained_on(path), output_dir=directory)
    del params  # before the next checkpoint loads: one model's params at a time
    write_tensorboard(results, os.path.join(directory, TENSORBOARD_DIR), step or 0)
    print(summary(results), flush=True)
    every.append(results)
  return every[0] if isinstance(checkpoint_path, str) else every


def _model_names(paths: list[str], given: str | Sequence[str] | None) -> list[str]:
  if not paths:
    raise FlanTuneError("evaluate.checkpoint_path: no checkpoint given")
  if given is None:
    names = [_name_of(path) for path in paths]
  elif isinstance(given, str):
    names = [given] if len(paths) == 1 else []
  else:
    names = list(given)
  if len(names) != len(paths):
    raise FlanTuneError(f"evaluate.model_name: {len(paths)} checkpoints need {len(paths)} "
                        f"names, got {given!r}")
  repeated = sorted({name for name in names if names.count(name) > 1})
  if repeated:
    raise FlanTuneError(f"evaluate.checkpoint_path: several checkpoints would be named "
                        f"{', '.join(repeated)}; give evaluate.model_name one name each")
  return names


def _network(paths: list[str]) -> network.T5:
  """The checkpoints' one network (gin's execution knobs applied); an error names the
  first checkpoint whose architecture, soft prompt or adapters differ."""
  first = None
  for path in paths:
    base = model_setup.initial_config(path, "evaluate.checkpoint_path")
    config = model_setup.reconcile(T5Config(), model_setup.gin_bound_fields(), base,
                                   f"checkpoint {path!r}")
    this = model_setup.network_for(path, config)
    if first is None:
      first = this
    elif this != first:
      raise FlanTuneError(f"evaluate.checkpoint_path: {path!r} is not the architecture of "
                          f"{paths[0]!r}; evaluate them in separate runs")
  return first


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
