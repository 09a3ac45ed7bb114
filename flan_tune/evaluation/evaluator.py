"""Evaluates a model on every task of a seqio evaluation mixture, with seqio's Evaluator.

seqio renders and caches the examples, applies each task's postprocessors and computes
its metrics; this module supplies the model: greedy decoding for generation metrics and
target log-likelihoods for score metrics (rank classification over the answer options,
the `_rank` tasks). A seqio logger collects each task's targets and inferences, from which
come the per-example primary scores (for paired bootstrap intervals in `compare`) and the
raw predictions written next to the results.

    RESULTS_DIR/results_<step>.json              flan_tune.evaluation.results format
    RESULTS_DIR/predictions_<step>/<task>.jsonl  input, target, prediction per example
"""

import dataclasses
import functools
import hashlib
import json
import logging
import os
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gin
import jax
import numpy as np
import seqio
from jax.sharding import Mesh

from flan_tune.errors import MixtureError
from flan_tune.evaluation import results as results_lib
from flan_tune.mixtures import builder
from flan_tune.tasks import metrics as task_metrics
from flan_tune.tasks import registry
from flan_tune.tasks.preprocessors import OPTIONS_SEPARATOR
from flan_tune.runtime import partitioning
from flan_tune.runtime.model import EncoderDecoderModel, ShardedModel

PRIMARY_METRICS = ("accuracy", "f1", "rougeLsum", "rougeL", "bleu")  # in order of preference


@gin.configurable
@dataclasses.dataclass(frozen=True)
class EvalConfig:
  """What to evaluate on; `num_examples` caps each task (None: the whole split)."""

  mixture_or_task_name: str = "flan_offline_eval"
  mixture_or_task_module: str | None = None
  collections: Sequence[Any] = ()  # gin calls that register collections (as TrainInput's)
  split: str = "validation"
  task_feature_lengths: Mapping[str, int] = dataclasses.field(
      default_factory=lambda: {"inputs": 512, "targets": 128})
  batch_size: int = 32
  num_examples: int | None = None
  seed: int = 0

  def __post_init__(self):
    if self.mixture_or_task_module:
      registry.import_modules([self.mixture_or_task_module])
    if self.batch_size < 1:
      raise MixtureError(f"EvalConfig.batch_size={self.batch_size} must be >= 1")
    builder.registered_provider(self.mixture_or_task_name, "EvalConfig.mixture_or_task_name")


class _Collector(seqio.Logger):
  """A seqio logger that keeps what the metrics saw, per task."""

  def __init__(self, output_dir):
    super().__init__(output_dir)
    self.tasks: dict[str, dict[str, Any]] = {}
    self._examples: dict[int, list] = {}  # id(cached dataset) -> its examples, read once

  def __call__(self, task_name, step, metrics, dataset, targets, inferences):
    del step
    if dataset is not None and id(dataset) not in self._examples:
      self._examples[id(dataset)] = list(dataset.as_numpy_iterator())
    self.tasks[task_name] = {
        "metrics": {k: float(v.value) for k, v in metrics.items()
                    if np.ndim(getattr(v, "value", None)) == 0},
        "examples": self._examples[id(dataset)] if dataset is not None else [],
        "targets": list(targets or []), "inferences": dict(inferences)}


class Evaluator:
  """Built once per model and mixture (seqio caches the rendered examples); call
  `evaluate(params, ...)` for each checkpoint.

  Scoring and decoding compile on `mesh` under `rules` (default: every device, data
  parallel), with the params split as training splits them (`runtime.model`), so a
  model that needed model parallelism or FSDP to train is evaluated the same way."""

  def __init__(self, config: EvalConfig, model: EncoderDecoderModel, output_dir: str,
               mesh: Mesh | None = None, rules: partitioning.Rules | None = None):
    self.config = config
    self.output_dir = output_dir
    self.sharded = ShardedModel(model, config.task_feature_lengths["targets"], mesh, rules)
    self.sharded.check_batch_size(config.batch_size)
    os.makedirs(output_dir, exist_ok=True)
    name = config.mixture_or_task_name
    self._seqio = seqio.Evaluator(
        mixture_or_task_name=name,
        feature_converter=seqio.EncDecFeatureConverter(pack=False),
        eval_split=config.split, seed=config.seed,
        sequence_length=dict(config.task_feature_lengths),
        num_examples=config.num_examples, logger_cls=(_Collector,), log_dir=output_dir,
        async_compute_metrics=False)
    self.tasks = [task.name for task in self._seqio.eval_tasks]
    self._rows: dict[int, list] = {}  # id(cached dataset) -> its rows, read once
    if not self.tasks:
      raise MixtureError(f"{name!r} has no task with metrics and a {config.split!r} split")
    skipped = sorted(set(_members(name)) - set(self.tasks))
    if skipped:
      print(f"eval: skipping {len(skipped)} members of {name!r} without metric_fns or a "
            f"{config.split!r} split: {', '.join(skipped[:5])}"
            + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""), file=sys.stderr)


  def evaluate(self, params, *, model_name: str, step: int | None, checkpoint: str = "",
               trained_on: str | None = None,
               output_dir: str | None = None) -> results_lib.EvalResults:
    """Runs every task, writes results_<step>.json and the predictions; returns them.

    `trained_on`: the mixture the model was trained on; its families count as held-in.
    `output_dir` (default: the one given at construction) lets several checkpoints of one
    step share this evaluator."""
    output_dir = output_dir or self.output_dir
    collector: _Collector = self._seqio.loggers[0]
    collector.tasks.clear()
    progress = _Progress(len(self.tasks))
    self._seqio.evaluate(
        compute_metrics=True, step=step,
        predict_fn=progress.wrap(functools.partial(self._predict, params)),
        score_fn=progress.wrap(functools.partial(self._scores, params)))
    trained = _families_of(trained_on)
    tasks = {name: _task_result(name, collector.tasks[name], trained, self.config.num_examples)
             for name in self.tasks if name in collector.tasks}
    results = results_lib.EvalResults(
        model=model_name, step=step, split=self.config.split,
        mixture=self.config.mixture_or_task_name, checkpoint=checkpoint, tasks=tasks)
    suffix = "final" if step is None else str(step)
    if jax.process_index() == 0:
      results_lib.save(results, os.path.join(output_dir, f"results_{suffix}.json"))
      _write_predictions(os.path.join(output_dir, f"predictions_{suffix}"),
                         collector.tasks)
    return results

  def _batches(self, dataset):
    """(indices, features) in fixed-size batches; the last is padded by repeating rows,
    so every batch has one shape and the functions compile once."""
    size = self.config.batch_size
    if id(dataset) not in self._rows:  # seqio hands over the same cached datasets each call
      self._rows[id(dataset)] = list(dataset.as_numpy_iterator())
    rows = self._rows[id(dataset)]
    for start in range(0, len(rows), size):
      chunk = rows[start:start + size]
      indices = [int(index) for index, _ in chunk]
      padded = chunk + [chunk[-1]] * (size - len(chunk))
      features = {key: np.stack([row[key] for _, row in padded]) for key in padded[0][1]}
      yield indices, features

  def _predict(self, params, dataset, model_feature_shapes=None):
    del model_feature_shapes
    out = []
    for indices, batch in self._batches(dataset):
      tokens = self.sharded.predict_batch(params, batch["encoder_input_tokens"])
      # Whole rows (0 after EOS): seqio stacks them, and decoding stops at EOS.
      out.extend((index, row.tolist()) for index, row in zip(indices, tokens))
    return out

  def _scores(self, params, dataset, model_feature_shapes=None):
    del model_feature_shapes
    out = []
    for indices, batch in self._batches(dataset):
      scores = self.sharded.score_batch(params, batch)
      out.extend((index, float(score)) for index, score in zip(indices, scores))
    return out


def _members(name: str) -> list[str]:
  provider = seqio.get_mixture_or_task(name)
  return [t.name for t in getattr(provider, "tasks", [provider])]


class _Progress:
  """A console line per evaluated task ("eval 12/40 tasks")."""

  def __init__(self, total: int):
    self.total, self.done = total, 0

  def wrap(self, fn: Callable) -> Callable:
    def call(*args, **kwargs):
      out = fn(*args, **kwargs)
      self.done += 1
      if jax.process_index() == 0:
        print(f"\reval {self.done}/{self.total} tasks", end="", flush=True, file=sys.stderr)
        if self.done >= self.total:
          print(file=sys.stderr)
      return out
    return call


def _families_of(mixture: str | None) -> set[str]:
  """Instruction families among a training mixture's members."""
  if not mixture:
    return set()
  return {variant.task.name for name in _members(mixture)
          if (variant := registry.get_variant(name))}


def _task_result(name: str, collected: Mapping[str, Any], trained: set[str],
                 num_examples: int | None) -> results_lib.TaskResult:
  task = seqio.get_mixture_or_task(name)
  variant = registry.get_variant(name)
  examples = collected["examples"]
  metrics = collected["metrics"]
  primary = next((m for m in PRIMARY_METRICS if m in metrics), next(iter(metrics), ""))
  if "score" in collected["inferences"]:
    ids, scores, chance, metrics = _ranked_examples(task, examples, collected, primary,
                                                    metrics, num_examples)
  else:
    ids, scores, chance = _generated_examples(task, examples, collected, primary)
    share = option_share(examples, collected["inferences"].get("prediction", []))
    if share is not None:
      metrics = {**metrics, results_lib.OPTION_SHARE: share}
  family = variant.task.name if variant else name
  return results_lib.TaskResult(
      family=family, cluster=variant.task.cluster if variant else "",
      style=variant.style.value if variant else "", scoring=bool(variant and variant.scoring),
      held_out=family not in trained, primary_metric=primary,
      chance=chance if primary == "accuracy" else 0.0,
      metrics=metrics, example_ids=ids, example_scores=scores)


def _digest(*parts: Any) -> str:
  return hashlib.sha1(json.dumps([_text(p) for p in parts]).encode()).hexdigest()[:16]


def _text(value: Any) -> Any:
  if isinstance(value, bytes):
    return value.decode("utf-8", "replace")
  if isinstance(value, np.ndarray):
    return [_text(v) for v in value.tolist()]
  if isinstance(value, np.generic):
    return value.item()
  return value


def _primary_of(task: seqio.Task, targets: Sequence, inferences: Sequence,
                primary: str) -> float:
  """The task's metric containing `primary`, on these rows alone (one ranked example)."""
  for metric_fn in task.metric_fns:
    value = metric_fn(list(targets), list(inferences))
    if primary in value:
      return float(getattr(value[primary], "value", value[primary]))
  return float("nan")


def _primary_scores(task: seqio.Task, targets: Sequence, predictions: Sequence,
                    primary: str) -> list[float]:
  """Each example's value of the task's metric that reports `primary`."""
  for metric_fn in task.metric_fns:
    values = task_metrics.per_example(metric_fn, list(targets), list(predictions))
    if values and primary in values[0]:
      return [float(getattr(value[primary], "value", value[primary])) for value in values]
  return [float("nan")] * len(targets)


def _generated_examples(task, examples, collected, primary):
  targets, predictions = collected["targets"], collected["inferences"].get("prediction", [])
  ids = [_digest(ex.get("inputs_pretokenized"), ex.get("targets_pretokenized"))
         for ex in examples]
  scores = _primary_scores(task, targets, predictions[:len(targets)], primary)
  options = [int(ex["num_options"]) for ex in examples if int(ex.get("num_options", 0)) > 0]
  chance = statistics.fmean(100.0 / n for n in options) if options else 0.0
  return ids, scores, chance


def option_share(examples: Sequence[Mapping], predictions: Sequence) -> float | None:
  """The percentage of answers that are one of the example's offered options (case and
  surrounding space aside): what a model that learned the answer format gets right
  whether or not it knows the answer. None without options."""
  hits = []
  for example, prediction in zip(examples, predictions):
    offered = _text(example.get("options", b""))
    if offered:
      choices = {o.strip().lower() for o in offered.split(OPTIONS_SEPARATOR)}
      hits.append(str(_text(prediction)).strip().lower() in choices)
  return 100.0 * statistics.fmean(hits) if hits else None


def _ranked_examples(task, examples, collected, primary, metrics, num_examples):
  """Rank-classification rows grouped into examples by their `idx` target entry.

  seqio's num_examples counts rows, so the last example may have lost some options: it is
  dropped and the metrics are recomputed on whole examples."""
  targets, scores_by_row = collected["targets"], collected["inferences"]["score"]
  groups: dict[int, list[int]] = {}
  for row, target in enumerate(targets):
    groups.setdefault(int(target[0][0]), []).append(row)
  if num_examples is not None and len(targets) >= num_examples and len(groups) > 1:
    del groups[max(groups)]
    rows = [r for members in groups.values() for r in members]
    metrics = {}
    for metric_fn in task.metric_fns:
      value = metric_fn([targets[r] for r in rows], [scores_by_row[r] for r in rows])
      metrics.update({k: float(getattr(v, "value", v)) for k, v in value.items()})
  ids, scores = [], []
  for rows in groups.values():
    ids.append(_digest(examples[rows[0]].get("inputs_pretokenized"),
                       *[examples[r].get("targets_pretokenized") for r in rows]))
    scores.append(_primary_of(task, [targets[r] for r in rows],
                              [scores_by_row[r] for r in rows], primary))
  chance = statistics.fmean(100.0 / len(rows) for rows in groups.values()) if groups else 0.0
  return ids, scores, chance, metrics


def _write_predictions(directory: str, collected: Mapping[str, Mapping[str, Any]]) -> None:
  os.makedirs(directory, exist_ok=True)
  for name, task in collected.items():
    inferences = task["inferences"]
    with open(os.path.join(directory, f"{name}.jsonl"), "w") as f:
      for i, example in enumerate(task["examples"]):
        row = {"input": _text(example.get("inputs_pretokenized")),
               "target": _text(example.get("targets_pretokenized"))}
        for key in ("prediction", "output", "score"):
          if key in inferences and i < len(inferences[key]):
            row[key] = _text(inferences[key][i])
        f.write(json.dumps(row, default=str) + "\n")
  logging.info("predictions written to %s", directory)
