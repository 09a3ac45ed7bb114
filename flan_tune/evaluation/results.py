"""Evaluation results on disk: what `flan-tune eval` writes and `flan-tune compare` reads.

One JSON file per evaluated checkpoint (RESULTS_DIR/results_<step>.json):

    {"format": "flan-tune-eval/1", "model": NAME, "step": N, "split": "validation",
     "mixture": EVAL MIXTURE, "checkpoint": PATH,
     "tasks": {SEQIO TASK: {"family", "cluster", "style", "scoring", "held_out",
                            "primary_metric", "chance", "metrics": {NAME: VALUE},
                            "example_ids": [...], "example_scores": [...]}},
     "aggregates": {...}}   # derived, written for readers; recomputed on load

Metric values are on a 0-100 scale. `example_scores` hold the primary metric per example
(0/100 for accuracy, per-example F1, sentence-level ROUGE or BLEU), in the order of
`example_ids` (a digest of each example's inputs and targets), so two models' results on
one task can be paired example by example for bootstrap intervals.
"""

import dataclasses
import json
import math
import os
import statistics
from collections.abc import Iterable, Mapping
from typing import Any

from flan_tune.errors import FlanTuneError

FORMAT = "flan-tune-eval/1"


class ResultsError(FlanTuneError):
  """A results file that cannot be read or compared; the message names file and field."""


# A generation task's metric when its examples offer options: the percentage of answers
# that are one of them (flan_tune.evaluation.evaluator.option_share).
OPTION_SHARE = "option_share"


@dataclasses.dataclass(frozen=True)
class TaskResult:
  """One seqio task's evaluation: metrics plus the per-example primary scores."""

  family: str            # the instruction task (all its prompt styles share it)
  cluster: str
  style: str             # prompt style: zs_opt, fs_noopt, zs_cot, ...
  scoring: bool          # True for rank classification (a `_rank` task)
  held_out: bool         # the family was not in the evaluated model's training mixture
  primary_metric: str
  chance: float          # the primary metric of guessing uniformly among the options
  metrics: dict[str, float]
  example_ids: list[str]
  example_scores: list[float]

  @property
  def score(self) -> float:
    return self.metrics[self.primary_metric]

  @property
  def normalized_score(self) -> float:
    """(score - chance) / (100 - chance) * 100: 0 at chance, 100 perfect, so tasks with
    different numbers of options can be averaged (as FLAN's normalized averages do)."""
    return normalize(self.score, self.chance)


def normalize(score: float, chance: float) -> float:
  return 100.0 * (score - chance) / (100.0 - chance) if chance < 100 else 0.0


@dataclasses.dataclass(frozen=True)
class EvalResults:
  model: str
  step: int | None
  split: str
  mixture: str
  checkpoint: str
  tasks: dict[str, TaskResult]

  def aggregates(self) -> dict[str, Any]:
    """Means of the primary metric (and its normalized form) by cluster, by style, over
    held-in and held-out tasks, and overall."""
    groups: dict[str, dict[str, list[TaskResult]]] = {
        "by_cluster": {}, "by_style": {}, "by_split": {}}
    for result in self.tasks.values():
      groups["by_cluster"].setdefault(result.cluster, []).append(result)
      groups["by_style"].setdefault(result.style, []).append(result)
      groups["by_split"].setdefault("held_out" if result.held_out else "held_in",
                                    []).append(result)
    out: dict[str, Any] = {kind: {name: _summary(members) for name, members in sorted(
        by_name.items())} for kind, by_name in groups.items()}
    out["overall"] = _summary(list(self.tasks.values()))
    return out

  def to_json(self) -> dict[str, Any]:
    return {"format": FORMAT, "model": self.model, "step": self.step, "split": self.split,
            "mixture": self.mixture, "checkpoint": self.checkpoint,
            "tasks": {name: dataclasses.asdict(result)
                      for name, result in sorted(self.tasks.items())},
            "aggregates": self.aggregates()}


def _summary(members: list[TaskResult]) -> dict[str, float]:
  return {"tasks": len(members),
          "score": statistics.fmean(m.score for m in members) if members else math.nan,
          "normalized": (statistics.fmean(m.normalized_score for m in members)
                         if members else math.nan)}


def save(results: EvalResults, path: str | os.PathLike) -> None:
  """Writes atomically (a reader never sees half a file)."""
  tmp = f"{path}.tmp"
  with open(tmp, "w") as f:
    json.dump(results.to_json(), f, indent=1)
  os.replace(tmp, path)


_TASK_FIELDS = {field.name: field.type for field in dataclasses.fields(TaskResult)}


def load(path: str | os.PathLike) -> EvalResults:
  """Reads and validates a results file; errors name the file and the field."""
  try:
    with open(path) as f:
      data = json.load(f)
  except FileNotFoundError:
    raise ResultsError(f"{path}: no such results file") from None
  except json.JSONDecodeError as e:
    raise ResultsError(f"{path}: not JSON ({e})") from None
  if not isinstance(data, Mapping) or data.get("format") != FORMAT:
    found = data.get("format") if isinstance(data, Mapping) else type(data).__name__
    raise ResultsError(f"{path}: format is {found!r}, expected {FORMAT!r} (a file written "
                       "by `flan-tune eval`)")
  for key in ("model", "split", "mixture", "tasks"):
    if key not in data:
      raise ResultsError(f"{path}: missing field {key!r}")
  tasks = {}
  for name, fields in data["tasks"].items():
    missing = sorted(set(_TASK_FIELDS) - set(fields))
    if missing:
      raise ResultsError(f"{path}: tasks.{name}: missing {', '.join(missing)}")
    result = TaskResult(**{key: fields[key] for key in _TASK_FIELDS})
    if len(result.example_ids) != len(result.example_scores):
      raise ResultsError(f"{path}: tasks.{name}: {len(result.example_ids)} example_ids but "
                         f"{len(result.example_scores)} example_scores")
    if result.primary_metric not in result.metrics:
      raise ResultsError(f"{path}: tasks.{name}: primary_metric {result.primary_metric!r} "
                         f"is not among its metrics {sorted(result.metrics)}")
    tasks[name] = result
  return EvalResults(model=data["model"], step=data.get("step"), split=data["split"],
                     mixture=data["mixture"], checkpoint=data.get("checkpoint", ""),
                     tasks=tasks)


def load_all(paths: Iterable[str | os.PathLike]) -> list[EvalResults]:
  return [load(path) for path in paths]
