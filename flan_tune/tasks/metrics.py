"""The metrics tasks declare, as seqio metric functions over postprocessed text.

Thin adapters over `t5.evaluation.metrics`, so scores are comparable with published T5
and FLAN numbers; they accept a single reference string or a list of references.
"""

from typing import Sequence, Union

import t5.evaluation.metrics as t5_metrics

References = Union[str, Sequence[str]]


def _as_lists(targets: Sequence[References]) -> list:
  return [[t] if isinstance(t, str) else list(t) for t in targets]


def _first(targets: Sequence[References]) -> list:
  return [t if isinstance(t, str) else t[0] for t in targets]


def accuracy(targets, predictions):
  """Exact-string accuracy in percent (the target is the first reference)."""
  return t5_metrics.accuracy(_first(targets), predictions)


def squad(targets, predictions):
  """SQuAD exact match and F1 in percent, maximized over the references."""
  return t5_metrics.squad(_as_lists(targets), predictions)


def rouge(targets, predictions):
  """ROUGE-1, ROUGE-2 and ROUGE-Lsum F-measure in percent."""
  return t5_metrics.rouge(_first(targets), predictions)


def bleu(targets, predictions):
  """Corpus BLEU (sacrebleu, as T5 reports it)."""
  references = _as_lists(targets)
  width = max(len(r) for r in references)
  if width == 1:
    return t5_metrics.bleu([r[0] for r in references], predictions)
  padded = [r + [r[-1]] * (width - len(r)) for r in references]
  return t5_metrics.bleu([list(column) for column in zip(*padded)], predictions)


def edit_distance(targets, predictions):
  """Word-level edit distance (mean and friends), for string manipulation."""
  return t5_metrics.edit_distance(_first(targets), predictions)


# Score metric for the `_rank` variants: picks the option with the highest likelihood.
rank_classification = t5_metrics.rank_classification

ACCURACY = (accuracy,)
QA = (squad,)
GENERATION = (rouge,)
TRANSLATION = (bleu,)
