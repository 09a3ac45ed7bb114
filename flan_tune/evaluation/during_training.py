"""Evaluation while a model trains, handed to `train()` as a callback so the training
loop does not depend on evaluation (both stand on `flan_tune.runtime`).

    flan-tune train ... --gin.train.evaluation=@EvalDuringTraining() \
      --gin.EvalDuringTraining.every=500 --gin.EvalConfig.mixture_or_task_name="'...'"
"""

import dataclasses
import os
from collections.abc import Callable

import gin
import jax

from flan_tune.errors import FlanTuneError
from flan_tune.evaluation import evaluate as evaluate_lib
from flan_tune.evaluation.evaluator import EvalConfig, Evaluator

EVAL_DIR = "eval"


@gin.configurable
@dataclasses.dataclass(frozen=True)
class EvalDuringTraining:
  """Evaluates `eval_config`'s mixture every `every` steps and at the end, into
  MODEL_DIR/eval. The config is built (and its mixture checked) when this is, before
  training does any work."""
  every: int = 1000
  eval_config: EvalConfig | None = None

  def __post_init__(self):
    if self.every < 1:
      raise FlanTuneError(f"EvalDuringTraining.every={self.every} must be >= 1")
    if self.eval_config is None:
      object.__setattr__(self, "eval_config", EvalConfig())

  def start(self, model, model_dir: str, mesh, rules, trained_on: str
            ) -> Callable[[int, object, bool], None]:
    """`evaluate(step, params, final)` on the training mesh, with the params where
    training holds them; the evaluator is built once, so the examples render once."""
    evaluator = Evaluator(self.eval_config, model, os.path.join(model_dir, EVAL_DIR), mesh,
                          rules)
    name = os.path.basename(os.path.normpath(model_dir))

    def evaluate(step: int, params, final: bool) -> None:
      if step % self.every and not final:
        return
      results = evaluator.evaluate(params, model_name=name, step=step,
                                   checkpoint=os.path.abspath(model_dir),
                                   trained_on=trained_on)
      evaluate_lib.write_tensorboard(
          results, os.path.join(model_dir, evaluate_lib.TENSORBOARD_DIR), step)
      if jax.process_index() == 0:
        print(evaluate_lib.summary(results), flush=True)

    return evaluate
