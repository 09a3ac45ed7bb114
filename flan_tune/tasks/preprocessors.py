"""The seqio preprocessor that renders raw examples into prompts, with metadata."""

from typing import Any, Mapping, Optional, Sequence

import numpy as np
import seqio
import tensorflow as tf
from t5.data import preprocessors as t5_preprocessors

from flan_tune.tasks import sources
from flan_tune.tasks.records import to_python
from flan_tune.tasks.render import ExemplarPool, PromptRenderer, example_fields
from flan_tune.tasks.spec import InstructionTask
from flan_tune.tasks.templates import PromptStyle

# Features that ride along with every rendered example so evaluation can aggregate.
METADATA_FEATURES = ("task", "collection", "cluster", "template_type", "template_index",
                     "num_exemplars", "num_options")
_PROBE_EXAMPLES = 4


def load_exemplar_pool(task: InstructionTask) -> Sequence[Mapping[str, Any]]:
  """The exemplar split's first `pool_size` examples: read by index when the source
  allows it, else streamed once through tf.data."""
  config = task.fewshot
  records = sources.random_access_records(task.source, config.exemplar_split)
  if records is not None:
    return ExemplarPool(task, records)
  ds = task.source.get_dataset(split=config.exemplar_split, shuffle=False)
  return [example_fields(task, tf.nest.map_structure(to_python, raw))
          for raw in ds.take(config.pool_size).as_numpy_iterator()]


OPTIONS_SEPARATOR = "\x1f"  # between the answer options in the `options` feature


class RenderPrompts:
  """seqio preprocessor: raw examples -> `inputs`/`targets` text plus metadata features.

  Rendering runs in Python (templates, option styles, few-shot pruning by tokens); a
  few examples are rendered eagerly first so that bad templates or fields raise a clear
  Python error at load time instead of deep inside tf.data.
  """

  def __init__(self, task: InstructionTask, style: PromptStyle, with_choices: bool = False):
    self.task = task
    self.style = style
    self.with_choices = with_choices  # adds a `choices` feature for rank classification
    self._pool: Optional[list] = None

  def _renderer(self, sequence_length, output_features) -> PromptRenderer:
    vocabulary = output_features["inputs"].vocabulary
    max_tokens = (sequence_length or {}).get("inputs") or self.task.fewshot.max_input_tokens
    if self.task.draws_exemplars(self.style) and self._pool is None:
      self._pool = load_exemplar_pool(self.task)
    return PromptRenderer(self.task, self.style,
                          count_tokens=lambda text: len(vocabulary.encode(text)),
                          max_input_tokens=max_tokens, pool=self._pool)

  def _references(self, fields: Mapping, result) -> list:
    """Every acceptable answer, for tasks that declare a references field."""
    if self.task.references_field is None:
      return []
    value = fields.get(self.task.references_field)
    return value if isinstance(value, list) and value else [result.targets]

  def __call__(self, dataset: tf.data.Dataset,
               sequence_length: Optional[Mapping[str, int]] = None,
               output_features: Optional[Mapping[str, seqio.Feature]] = None):
    renderer = self._renderer(sequence_length, output_features)
    structure = dataset.element_spec

    def render_leaves(*leaves):
      raw = tf.nest.pack_sequence_as(structure, [to_python(x) for x in leaves])
      fields = example_fields(self.task, raw)
      result = renderer.render(fields)
      choices = np.array([c.encode() for c in result.choices], dtype=object).reshape([-1])
      references = np.array([r.encode() for r in self._references(fields, result)],
                            dtype=object).reshape([-1])
      return (np.bytes_(result.inputs.encode()), np.bytes_(result.targets.encode()),
              np.int32(result.template_index), np.int32(result.num_exemplars), choices,
              references)

    for raw in dataset.take(_PROBE_EXAMPLES):
      render_leaves(*[x.numpy() for x in tf.nest.flatten(raw)])

    constants = {"task": self.task.variant_name(self.style),
                 "collection": self.task.collection, "cluster": self.task.cluster,
                 "template_type": self.style.value}

    def render(example):
      inputs, targets, template_index, num_exemplars, choices, references = tf.numpy_function(
          render_leaves, tf.nest.flatten(example),
          (tf.string, tf.string, tf.int32, tf.int32, tf.string, tf.string), stateful=False)
      out = {"inputs": inputs, "targets": targets, "template_index": template_index,
             "num_exemplars": num_exemplars}
      for value in out.values():
        value.set_shape([])
      choices.set_shape([None])
      out["num_options"] = tf.size(choices, out_type=tf.int32)  # evaluation's chance level
      # Evaluation's share of answers that are one of the options.
      out["options"] = tf.strings.reduce_join(choices, separator=OPTIONS_SEPARATOR)
      if self.with_choices:
        out["choices"] = choices
      if self.task.references_field is not None:
        references.set_shape([None])
        out["references"] = references
      out.update({k: tf.constant(v) for k, v in constants.items()})
      return out

    return dataset.map(render, num_parallel_calls=tf.data.AUTOTUNE)



def expand_choices(dataset: tf.data.Dataset) -> tf.data.Dataset:
  """One example per answer option, for scoring: T5's rank-classification format.

  Each row keeps the prompt and takes one option as its target, with `idx`
  (example, option) and `is_correct`, which `t5.evaluation.metrics.rank_classification`
  reads through `t5.data.postprocessors.rank_classification`.
  """
  return t5_preprocessors.rank_classification(
      dataset,
      inputs_fn=lambda ex: tf.fill(tf.shape(ex["choices"]), ex["inputs"]),
      targets_fn=lambda ex: ex["choices"],
      is_correct_fn=lambda ex: tf.equal(ex["choices"], ex["targets"]),
      mode="eval", passthrough_feature_keys=METADATA_FEATURES)
