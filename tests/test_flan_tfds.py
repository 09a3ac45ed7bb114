"""The TFDS collection (`flan_tune_tasks.flan_tfds`) under `tfds.testing.mock_data`: every template
of every task renders, each task yields tokenized examples through seqio, the mixture
follows FLAN 2022's weights and caps, and `flan-tune inspect` reports every member.

Mock data is random text and in-range labels, the same examples in every split.
"""

import contextlib
import dataclasses
import re
import subprocess
import sys

import numpy as np
import pytest
import seqio
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.testing import mocking

import flan_tune_tasks.flan_tfds as flan_tfds
from flan_tune import cli
from flan_tune.mixtures import builder
from flan_tune.tasks import registry
from flan_tune.tasks.preprocessors import example_fields, to_python
from flan_tune.tasks.render import PromptRenderer

MOCK_EXAMPLES = 6  # few-shot needs k + 1 = 4 distinct exemplars
UNFILLED_SLOT = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")
TASKS = flan_tfds.TASKS


def _fast_as_dataset(self, split, decoders=None, read_config=None, **kwargs):
  """mock_data's random examples, generated once per dataset and served from memory.

  TFDS's default mock builds a Python generator pipeline on every load; inspecting the
  whole mixture loads each dataset hundreds of times, so the examples (fixed-length
  sequences, the same random generator) are cached as tensors instead.
  """
  del split, decoders, read_config, kwargs
  name = self.info.full_name
  if name not in _MOCK_COLUMNS:
    generator = mocking.RandomFakeGenerator(self.info.features, MOCK_EXAMPLES,
                                            constant_dynamic_shape=True)
    _MOCK_COLUMNS[name] = tf.nest.map_structure(lambda *leaves: np.stack(leaves),
                                                *list(generator))
  return tf.data.Dataset.from_tensor_slices(_MOCK_COLUMNS[name])


_MOCK_COLUMNS = {}


@contextlib.contextmanager
def mock_tfds():
  with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES, as_dataset_fn=_fast_as_dataset):
    yield


def mock_fields(task, split="train"):
  """The task's mock examples as template fields, through its own example_fn."""
  with mock_tfds():
    raw = list(task.source.get_dataset(split, shuffle=False).as_numpy_iterator())
  return [example_fields(task, tf.nest.map_structure(to_python, r)) for r in raw]


def styles_for(task, template):
  """Every generation style that can render this template."""
  return [s for s in task.supported_styles() if s.inverted == template.inverted]


def assert_filled(text, where):
  assert text.strip(), f"{where}: empty"
  assert not UNFILLED_SLOT.search(text), f"{where}: unfilled slot in {text!r}"


def test_inspect_prints_statistics_for_every_member(capsys):
  """One cluster's evaluation mixture (40 members: each member is its own seqio pipeline,
  about half a second each); every template renders in the test below."""
  with mock_tfds():
    code = cli.main(["inspect", "flan_tfds_commonsense_eval", "--module",
                     "flan_tune_tasks.flan_tfds", "--sample", "20", "--pack_examples", "200"])
  out = capsys.readouterr().out
  assert code == 0
  table = out.split("Lengths in tokens over", 1)[1]
  # Columns: task, capped rate, share, examples, length percentiles, truncations.
  rows = {line.split()[0]: line.split() for line in table.splitlines() if line.strip()}
  members = builder.mixture_rates("flan_tfds_commonsense_eval")
  assert len(members) > 20 and set(members) <= set(rows), sorted(set(members) - set(rows))[:5]
  for member in members:
    task = registry.get_variant(member).task
    assert rows[member][3] == str(task.source.num_input_examples("train")), rows[member]
    assert rows[member][2].endswith("%")
  assert {registry.get_variant(m).task.name for m in builder.mixture_rates("flan_tfds")} == set(
      TASKS)
  assert "Packing 200 examples" in out


@pytest.mark.parametrize("name", TASKS)
def test_every_template_renders_in_every_style(name):
  task = registry.get_task(name)
  assert len([t for t in task.templates if not t.inverted]) >= 8, name
  examples = mock_fields(task)
  assert len(examples) == MOCK_EXAMPLES
  for index, template in enumerate(task.templates):
    # A one-template copy forces the template while the renderer stays public API.
    forced = dataclasses.replace(task, templates=[template])
    styles = styles_for(task, template)
    assert styles, f"{name} template {index} is rendered by no style"
    for style in styles:
      renderer = PromptRenderer(forced, style, count_tokens=lambda s: len(s.split()),
                                max_input_tokens=100_000, pool=examples)
      for fields in examples[:2]:
        rendered = renderer.render(fields)
        where = f"{name} template {index} style {style.value}"
        assert_filled(rendered.inputs, where)
        assert_filled(rendered.targets, where)
        if style.few_shot:
          assert rendered.num_exemplars == task.fewshot.k, where
        if style.shows_options:
          assert rendered.targets in rendered.choices, where
        if style.chain_of_thought:
          assert task.cot_answer_phrase in rendered.targets, where


@pytest.mark.parametrize("name", TASKS)
def test_metrics_accept_postprocessed_targets(name):
  """Every metric runs on what the task's postprocessor makes of its own targets."""
  task = registry.get_task(name)
  examples = mock_fields(task)
  style = task.supported_styles()[0]
  renderer = PromptRenderer(task, style, count_tokens=lambda s: len(s.split()),
                            max_input_tokens=100_000, pool=examples)
  targets = [renderer.render(fields).targets for fields in examples]
  postprocess = task.postprocess_fn or (lambda text, example=None, is_target=False: text)
  references = [postprocess(t, is_target=True) for t in targets]
  predictions = [postprocess(t) for t in targets]
  for metric in task.metric_fns:
    with np.errstate(all="ignore"):
      scores = metric(references, predictions)
    assert isinstance(scores, dict) and scores, (name, metric)


@pytest.mark.parametrize("name", TASKS)
def test_seqio_yields_tokenized_validation_examples(name):
  task = registry.get_task(name)
  style = "zs_opt" if task.has_options else "zs_noopt"
  seqio_task = seqio.get_mixture_or_task(f"{name}_{style}")
  with mock_tfds():
    dataset = seqio_task.get_dataset({"inputs": 512, "targets": 128}, split="validation",
                                     shuffle=False, try_in_mem_cache=False)
    examples = list(dataset.as_numpy_iterator())
  assert len(examples) == MOCK_EXAMPLES, name
  eos = seqio_task.output_features["inputs"].vocabulary.eos_id
  for example in examples:
    assert len(example["inputs"]) > 1 and len(example["targets"]) > 1
    assert example["inputs"][-1] == eos and example["targets"][-1] == eos
    assert example["cluster"].decode() == task.cluster
    assert example["collection"].decode() == task.collection


def test_collection_covers_flan_clusters_with_pinned_versions():
  tfds_names = set(flan_tfds.common.REGISTERED.values())
  assert len(tfds_names) >= 25
  assert all(re.search(r":\d+\.\d+\.\d+$", n) for n in tfds_names), tfds_names
  clusters = {registry.get_task(t).cluster for t in TASKS}
  assert {"nli", "sentiment", "paraphrase", "reading_comprehension", "closed_book_qa",
          "commonsense", "coreference", "struct_to_text", "translation",
          "summarization"} <= clusters
  for task in map(registry.get_task, TASKS):
    assert any(t.inverted for t in task.templates), task.name
    assert task.metric_fns, task.name


def test_mixture_shares_follow_collection_weights_and_caps():
  spec = flan_tfds.SPEC
  rates = builder.mixture_rates("flan_tfds")
  capped = builder.capped_rates("flan_tfds")
  assert abs(sum(rates.values()) - 1) < 1e-9
  collection_of = {}
  for member in rates:
    variant = registry.get_variant(member)
    task = variant.task
    collection_of[member] = task.collection
    train_size = task.source.num_input_examples("train")
    assert capped[member] == min(spec.caps[task.collection], train_size), member
  present = set(collection_of.values())
  assert present == set(spec.collection_weights), present  # all five are used
  total_weight = sum(spec.collection_weights[c] for c in present)
  for collection in present:
    share = sum(r for m, r in rates.items() if collection_of[m] == collection)
    assert share == pytest.approx(spec.collection_weights[collection] / total_weight)
  assert {registry.get_variant(m).task.name for m in rates} == set(TASKS)


def test_held_out_mixtures_cover_every_cluster():
  clusters = {registry.get_task(t).cluster for t in TASKS}
  assert set(flan_tfds.HELD_OUT) == clusters
  for cluster, (train, evaluation) in flan_tfds.HELD_OUT.items():
    trained = {registry.get_variant(m).task.cluster for m in builder.mixture_rates(train)}
    assert cluster not in trained and trained
    evaluated = {registry.get_variant(m).task.cluster
                 for m in builder.mixture_rates(evaluation)}
    assert evaluated == {cluster}


def test_import_reads_no_data():
  """Registration must not build a TFDS dataset: sizes are declared, not looked up."""
  script = (
      "import tensorflow_datasets.core.dataset_builder as b\n"
      "def refuse(*a, **k): raise AssertionError('a TFDS builder was created')\n"
      "b.DatasetBuilder.__init__ = refuse\n"
      "import flan_tune_tasks.flan_tfds as f\n"
      "print(len(f.TASKS))\n")
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  assert int(result.stdout.split()[-1]) == len(TASKS)


def fields_of(name, raw):
  return registry.get_task(f"tfds_{name}").example_fn(raw)


def test_example_fns_map_realistic_rows():
  """Answer keys, option strings and annotations that random mock text never has."""
  arc = fields_of("ai2_arc_easy", {
      "question": "Which gas do plants take in?", "id": "q1", "answerKey": 2,
      "choices": {"text": ["oxygen", "nitrogen", "carbon dioxide", "helium"],
                  "label": [0, 1, 2, 3]}})
  assert arc["answer"] == "carbon dioxide" and len(arc["options"]) == 4
  qasc = fields_of("qasc", {
      "question": "What do plants need?", "answerKey": "C", "fact1": "f1", "fact2": "f2",
      "choices": {"text": list("abcdefgh"), "label": list("ABCDEFGH")},
      "combinedfact": "", "formatted_question": "", "id": "q"})
  assert qasc["answer"] == "c"
  math = fields_of("math_qa", {
      "Problem": "what is 6 * 5 ?", "correct": "c", "Rationale": "", "category": "general",
      "options": "a ) 38 , b ) 27.675 , c ) 30 , d ) 41 , e ) 45",
      "annotated_formula": "", "linear_formula": "", "correct_option": ""})
  assert math["options"] == ["38", "27.675", "30", "41", "45"] and math["answer"] == "30"
  gsm = fields_of("gsm8k", {
      "question": "How many clips?", "short_answer": "72", "answer": "",
      "annotation": "She sold 48/2 = <<48/2=24>>24 in May.\nSo 48+24 = <<48+24=72>>72.\n"})
  assert gsm["rationale"] == "She sold 48/2 = 24 in May. So 48+24 = 72."
  assert gsm["answer"] == "72"
  record = fields_of("super_glue_record", {
      "passage": "Storm hits.\n@highlight\nRain in Leeds", "query": "@placeholder flooded",
      "entities": ["Leeds", "York", "Leeds"], "answers": ["Leeds"],
      "idx": {"passage": 0, "query": 0}})
  assert record["options"] == ["Leeds", "York"] and record["filled"] == "Leeds flooded"
  assert "@highlight" not in record["passage"] and record["query"] == "___ flooded"
  e2e = fields_of("e2e_nlg", {
      "input_text": {"table": {"column_header": ["name", "eatType"],
                               "content": ["The Vaults", "pub"], "row_number": [1, 1]}},
      "target_text": "The Vaults is a pub."})
  assert e2e["data"] == "name: The Vaults | eatType: pub"
  copa = fields_of("super_glue_copa", {
      "premise": "The man broke his toe.", "question": "cause", "label": 1, "idx": 0,
      "choice1": "He got a hole in his sock.", "choice2": "He dropped a hammer on his foot."})
  assert copa["answer"] == "He dropped a hammer on his foot." and copa["connector"] == "because"
  assert fields_of("glue_stsb", {"sentence1": "a", "sentence2": "b", "label": 3.6,
                                 "idx": 0})["label"] == "4"
  assert fields_of("sentiment140", {"text": "t", "polarity": 4, "date": "", "query": "",
                                    "user": ""})["label"] == "positive"
  assert fields_of("trec", {"text": "Who?", "label-coarse": 3, "label-fine": 0})["label"] == (
      "person")
  dialog = fields_of("wiki_dialog", {
      "title": "Owls", "passage": "Owls hunt at night.", "pid": "p", "author_num": [0, 1, 0],
      "sentences": [], "utterances": ["Do owls hunt?", "Owls hunt at night.", "Why?"]})
  assert dialog["history"] == "A: Do owls hunt?\nB: Owls hunt at night."
  assert (dialog["response"], dialog["next_speaker"]) == ("Why?", "A")
  with pytest.raises(ValueError, match="unlabeled"):
    fields_of("glue_rte", {"sentence1": "a", "sentence2": "b", "label": -1, "idx": 0})


def test_unlabeled_rows_are_filtered_out():
  source = registry.get_task("tfds_snli").source
  rows = tf.data.Dataset.from_tensor_slices(
      {"premise": ["p"] * 3, "hypothesis": ["h"] * 3, "label": np.array([0, -1, 2])})
  kept = list(rows.filter(source.keep_fn).as_numpy_iterator())
  assert [r["label"] for r in kept] == [0, 2]


def test_postprocessors_map_markers_and_class_ids():
  task = registry.get_task("tfds_glue_mnli")
  assert task.postprocess_fn("(B)") == "it is not possible to tell"
  assert task.postprocess_fn("No\nbecause...") == "no"
  assert task.postprocess_fn("3.") == "no" and task.postprocess_fn("maybe") == "maybe"
  mrpc = registry.get_task("tfds_glue_mrpc").postprocess_fn
  assert [mrpc("yes"), mrpc("no"), mrpc("(A)"), mrpc("perhaps")] == [1, 0, 0, -1]
  assert registry.get_task("tfds_glue_stsb").postprocess_fn("3") == 3.0
