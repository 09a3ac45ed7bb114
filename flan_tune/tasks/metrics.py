"""The metrics tasks declare, as seqio metric functions over postprocessed text.

Thin adapters over `t5.evaluation.metrics`, so scores are comparable with published T5
and FLAN numbers; they accept a single reference string or a list of references.
"""

import functools
import re
import string
from typing import Sequence, Union

import numpy as np
import t5.evaluation.metrics as t5_metrics

References = Union[str, Sequence[str]]
_PUNCTUATION = frozenset(string.punctuation)


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


ROUGE_KEYS = ("rouge1", "rouge2", "rougeLsum")


def rouge(targets, predictions):
  """ROUGE-1, ROUGE-2 and ROUGE-Lsum F-measure in percent: the mean over the examples of
  t5's per-example scores. t5's `rouge` reports the median of 1,000 unseeded bootstrap
  resamples of this mean instead, which moves by about 0.1 between two evaluations of the
  same predictions."""
  scores = _rouge_scores(targets, predictions)
  return {key: float(np.mean([score[key] for score in scores])) if scores else 0.0
          for key in ROUGE_KEYS}


@functools.lru_cache(maxsize=1)
def _rouge_scorer():
  from rouge_score import rouge_scorer

  return rouge_scorer.RougeScorer(list(ROUGE_KEYS))


def _rouge_prepared(text: str) -> str:
  """As t5's rouge prepares both texts: one sentence per line, for ROUGE-Lsum."""
  return text.replace(" . ", " .\n")


def _rouge_scores(targets: Sequence[References], predictions: Sequence[str]) -> list[dict]:
  scorer = _rouge_scorer()
  return [{key: 100 * score.fmeasure for key, score in scorer.score(
      target=_rouge_prepared(target), prediction=_rouge_prepared(prediction)).items()}
      for target, prediction in zip(_first(targets), predictions)]


def per_example(metric_fn, targets: Sequence[References], predictions: Sequence[str]) -> list:
  """`metric_fn`'s value on each example alone (the scores `compare` resamples)."""
  if metric_fn is rouge:
    return _rouge_scores(targets, predictions)
  return [metric_fn([target], [prediction]) for target, prediction in zip(targets, predictions)]


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


def _squad_normalized(text: str) -> str:
  """SQuAD's answer normalization: lower case, no punctuation, articles or extra spaces."""
  text = "".join(c for c in text.lower() if c not in _PUNCTUATION)
  return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


@functools.lru_cache(maxsize=1)
def _rouge_l_scorer():
  from rouge_score import rouge_scorer

  return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l_exact_match(targets, predictions):
  """Natural Instructions' official scores, in percent: ROUGE-L F-measure with stemming
  and exact match after SQuAD normalization, each the best over an example's references."""
  scorer = _rouge_l_scorer()
  rouge_l = exact = 0.0
  for references, prediction in zip(_as_lists(targets), predictions):
    rouge_l += max(scorer.score(r, prediction)["rougeL"].fmeasure for r in references)
    exact += max(float(_squad_normalized(r) == _squad_normalized(prediction))
                 for r in references)
  count = max(len(predictions), 1)
  return {"rougeL": 100 * rouge_l / count, "exact_match": 100 * exact / count}


# Score metric for the `_rank` variants: picks the option with the highest likelihood.
rank_classification = t5_metrics.rank_classification

ACCURACY = (accuracy,)
QA = (squad,)
GENERATION = (rouge,)
TRANSLATION = (bleu,)
NATURAL_INSTRUCTIONS = (rouge_l_exact_match,)
