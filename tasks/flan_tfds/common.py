"""Shared pieces of the TFDS collection: one registration helper, a filtering source,
label helpers and the postprocessors that map model text back to an answer.

Split sizes are declared, not read: mixture rates need them at import time, before any
data exists on the machine (and `tfds.testing.mock_data` has none). Every size comes
from the TFDS catalog entry (`dataset_info.json`) of the pinned version.
"""

import re
from typing import Callable, Dict, Mapping, Optional, Sequence, Union

import t5.evaluation.metrics as t5_metrics
import tensorflow as tf

from flan_tune.tasks import FewShotConfig, register_task
from flan_tune.tasks import postprocessors
from flan_tune.tasks.seeding import stable_digest
from flan_tune.tasks.sources import TfdsSource

PREFIX = "tfds_"
COLLECTIONS = ("flan2021", "t0", "niv2", "cot", "dialog")


# What the modules registered, in order: task name -> pinned TFDS name.
REGISTERED: Dict[str, str] = {}


class FilteredTfdsSource(TfdsSource):
  """A TFDS source that drops raw examples failing `keep_fn` (a TF predicate).

  Some datasets ship unlabeled rows inside labeled splits (SNLI's label -1, neutral
  tweets in Sentiment140's test split); rendering them would invent a label. The
  declared sizes stay the catalog's, a slight overcount that rates tolerate.
  """

  def __init__(self, tfds_name, splits, num_examples, keep_fn: Callable):
    super().__init__(tfds_name, splits, num_examples)
    self.keep_fn = keep_fn

  def get_dataset(self, split=None, shuffle=True, seed=None, shard_info=None, **kwargs):
    dataset = super().get_dataset(split, shuffle, seed, shard_info, **kwargs)
    return dataset.filter(self.keep_fn)


def task_seed(name: str) -> int:
  """Derived from the name alone, so adding a task never reseeds another."""
  return stable_digest("flan_tfds", name) % 2**32


def add(name: str, tfds_name: str, *, splits: Union[Sequence[str], Mapping[str, str]],
        sizes: Mapping[str, int], collection: str, cluster: str, templates,
        example_fn: Callable, metric_fns, postprocess_fn=None,
        keep_fn: Optional[Callable] = None, fewshot: Optional[FewShotConfig] = None,
        **task_kwargs) -> str:
  """Registers `tfds_{name}` over a pinned TFDS dataset; returns the task name."""
  if collection not in COLLECTIONS:
    raise ValueError(f"{name}: unknown collection {collection!r}")
  if keep_fn is None:
    source = TfdsSource(tfds_name, splits, sizes)
  else:
    source = FilteredTfdsSource(tfds_name, splits, sizes, keep_fn)
  task_name = PREFIX + name
  register_task(
      name=task_name, source=source, templates=templates, cluster=cluster,
      collection=collection, example_fn=example_fn, metric_fns=list(metric_fns),
      postprocess_fn=postprocess_fn, seed=task_seed(task_name),
      fewshot=fewshot or FewShotConfig(), **task_kwargs)
  REGISTERED[task_name] = tfds_name
  return task_name


# ---------------------------------------------------------------------------- labels

def label_text(options: Sequence[str], index: int) -> str:
  """A ClassLabel id as option text; unlabeled rows (-1) are an error, not a guess."""
  if not 0 <= index < len(options):
    raise ValueError(f"label {index} outside 0..{len(options) - 1}; "
                     "is this an unlabeled split?")
  return options[index]


def wrapped(sequence: Sequence, index: int):
  """For plain integer labels that mock data draws from 0..254; real ones are in range."""
  return sequence[index % len(sequence)]


def letter_index(key: str, count: int) -> int:
  """'A'/'b'/'3' answer keys to a position; mock data's random keys wrap into range."""
  key = key.strip()
  if key.isdigit():
    return (int(key) - 1) % count
  return (ord(key[:1].upper() or "A") - ord("A")) % count


def choices_with(choices: Sequence[str], answer: str) -> list:
  """Per-example options that contain the answer (real data always does; mock text
  is random, so the answer is appended there)."""
  choices = list(choices)
  return choices if answer in choices else choices + [answer]


def first(values: Sequence[str], what: str) -> str:
  if not values:
    raise ValueError(f"no {what} in this example")
  return values[0]


def squash(text: str) -> str:
  """One line of text: newlines and runs of spaces become single spaces."""
  return re.sub(r"\s+", " ", text).strip()


def strip_markup(text: str) -> str:
  """MultiRC paragraphs number their sentences in HTML ('<b>Sent 1: </b>...<br>')."""
  text = re.sub(r"<b>Sent \d+: </b>", "", text)
  return squash(re.sub(r"<br\s*/?>", " ", text))


# ---------------------------------------------------------------------- postprocess

_MARKER = re.compile(r"^[(\[]?([A-Za-z]|\d{1,2})[)\].:]?$")


def option_postprocessor(options: Sequence[str]):
  """Maps a prediction to the option it names: the option's text (any case) or the
  letter or number of its position ('(B)', 'b.', '2)'), since the option markers a
  prompt shows are drawn at random. Anything else passes through and scores wrong."""
  by_text = {o.lower(): o for o in options}

  def postprocess(text, example=None, is_target=False):
    text = postprocessors.first_line(text.decode() if isinstance(text, bytes) else text)
    for candidate in (text.lower(), text.lower().rstrip(".")):
      if candidate in by_text:
        return by_text[candidate]
    match = _MARKER.match(text)
    if match:
      key = match.group(1)
      index = int(key) - 1 if key.isdigit() else ord(key.upper()) - ord("A")
      if 0 <= index < len(options):
        return options[index]
    return text

  return postprocess


def class_id_postprocessor(options: Sequence[str]):
  """The option's position, -1 when the prediction names none: T5's F1, Matthews and
  multi-class F1 metrics compare class ids."""
  to_option = option_postprocessor(options)
  positions = {o: i for i, o in enumerate(options)}

  def postprocess(text, example=None, is_target=False):
    return positions.get(to_option(text, example, is_target), -1)

  return postprocess


def float_postprocessor(text, example=None, is_target=False):
  """STS-B scores: the text as a number (-1 when it is not one), as T5 does."""
  text = text.decode() if isinstance(text, bytes) else text
  try:
    return float(postprocessors.first_line(text))
  except ValueError:
    return -1.0


def text_postprocessor(text, example=None, is_target=False):
  """Generated text, stripped; multi-line targets (CNN highlights) stay whole."""
  return (text.decode() if isinstance(text, bytes) else text).strip()


def short_answer_postprocessor(text, example=None, is_target=False):
  """Short answers (QA spans, numbers): the first line."""
  return postprocessors.first_line(text.decode() if isinstance(text, bytes) else text)


def trivia_qa_metric(targets, predictions):
  """T5's TriviaQA EM/F1 (its own answer normalization) over single references."""
  return t5_metrics.trivia_qa([[t] if isinstance(t, str) else list(t) for t in targets],
                              predictions)


matthews_corrcoef = t5_metrics.sklearn_metrics_wrapper(
    "matthews_corrcoef", metric_post_process_fn=lambda x: 100 * x)


def tf_label_at_least(feature: str, minimum: int):
  """keep_fn: rows whose integer `feature` is >= minimum (drops -1 'no label')."""
  return lambda example: tf.greater_equal(example[feature], minimum)


def tf_label_not(feature: str, value: int):
  """keep_fn: rows whose integer `feature` differs from `value`."""
  return lambda example: tf.not_equal(example[feature], value)
