"""The offline collection as a whole: size, templates, splits, vocabulary, mixtures."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import seqio

import flan_tune_tasks.offline  # noqa: F401  (registers the collection)
from flan_tune.mixtures import builder
from flan_tune.tasks import registry, render
from flan_tune.tasks.seeding import example_key, stable_digest
from flan_tune.tasks.templates import OPTIONS_SLOT
from flan_tune_tasks.offline import corpus, family
from flan_tune_tasks.offline.vocabulary import EXTRA_IDS, offline_vocabulary

FAMILIES = list(family.FAMILIES)
LENGTHS = {"inputs": 512, "targets": 128}


def test_collection_spans_enough_families_and_clusters():
  clusters = {registry.get_task(name).cluster for name in FAMILIES}
  assert len(FAMILIES) >= 30 and len(clusters) >= 10


@pytest.mark.parametrize("name", FAMILIES)
def test_family_templates_and_splits(name):
  task = registry.get_task(name)
  assert len(task.templates) >= 8
  assert any(t.inverted for t in task.templates)
  if task.has_options:
    assert sum(OPTIONS_SLOT in t.inputs for t in task.templates if not t.inverted) >= 1
  keys = {split: {example_key(r) for r in task.source.records(split)}
          for split in ("train", "validation", "test")}
  sizes = {split: task.source.num_input_examples(split) for split in keys}
  assert all(len(keys[s]) == sizes[s] > 0 for s in keys), "duplicates inside a split"
  assert not keys["train"] & keys["validation"]
  assert not keys["train"] & keys["test"]
  assert not keys["validation"] & keys["test"]


@pytest.mark.parametrize("name", FAMILIES)
def test_every_template_renders_in_every_style(name):
  task = registry.get_task(name)
  pool = task.source.records("train")
  for style in task.supported_styles():
    renderer = render.PromptRenderer(task, style, count_tokens=lambda t: len(t.split()),
                                     max_input_tokens=512, pool=pool)
    for index in task.templates_for(style):
      for fields in task.source.records("validation")[:3]:
        result = renderer.render(fields, template_index=index)
        where = f"{name} {style.value} template {index}"
        assert result.inputs.strip() and result.targets.strip(), where
        for text in (result.inputs, result.targets):
          assert "{" not in text and "}" not in text, f"{where}: {text!r}"
        if result.choices:
          assert result.targets in result.choices, where
        if style.chain_of_thought:
          assert f" {task.cot_answer_phrase} " in result.targets, where
          assert result.targets.endswith("."), where
        if style.few_shot:
          assert result.num_exemplars == task.fewshot.k, where
        else:  # short enough for 512/128 tokens with room for two exemplars
          assert len(result.inputs.split()) < 150, where
          assert len(result.targets.split()) < 60, where


def test_generated_data_is_the_same_in_another_process():
  script = ("import json, flan_tune_tasks.offline\n"
            "from flan_tune.tasks import registry\n"
            "from flan_tune.tasks.seeding import stable_digest\n"
            "from flan_tune_tasks.offline import corpus, family\n"
            "print(json.dumps([stable_digest(registry.get_task(n).source.records('test'))\n"
            "                  for n in family.FAMILIES] + [stable_digest(corpus.documents())]))")
  env = dict(os.environ, PYTHONHASHSEED="123")
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, cwd=os.path.dirname(os.path.dirname(__file__)), check=True)
  here = [stable_digest(registry.get_task(n).source.records("test")) for n in FAMILIES]
  assert json.loads(result.stdout.strip().splitlines()[-1]) == here + [
      stable_digest(corpus.documents())]


def test_tokenization_round_trips_through_the_shipped_vocabulary():
  vocabulary = offline_vocabulary()
  assert vocabulary.vocab_size >= 1000 + EXTRA_IDS
  assert (vocabulary.pad_id, vocabulary.eos_id, vocabulary.unk_id) == (0, 1, 2)
  for name in FAMILIES:
    variant = registry.variants_of(name)[0].seqio_name
    ds = seqio.get_mixture_or_task(variant).get_dataset(
        LENGTHS, split="validation", shuffle=False, use_cached=False)
    for example in ds.take(5).as_numpy_iterator():
      for feature in ("inputs", "targets"):
        ids = example[feature].tolist()
        assert vocabulary.unk_id not in ids
        assert ids[-1] == vocabulary.eos_id
        text = example[f"{feature}_pretokenized"].decode()
        assert vocabulary.decode(ids[:-1]) == text, f"{variant} {feature}"


def test_held_out_mixtures_leave_out_exactly_one_cluster():
  clusters = {}
  for name in FAMILIES:
    clusters.setdefault(registry.get_task(name).cluster, set()).add(name)
  assert set(flan_tune_tasks.offline.HELD_OUT) == set(clusters)
  everything = {registry.get_variant(m).task.name for m in builder.mixture_rates("flan_offline")}
  assert everything == set(FAMILIES)
  for cluster, (train, evaluation) in flan_tune_tasks.offline.HELD_OUT.items():
    trained = {registry.get_variant(m).task.name for m in builder.mixture_rates(train)}
    assert trained == set(FAMILIES) - clusters[cluster]
    evaluated = builder.mixture_rates(evaluation)
    assert {registry.get_variant(m).task.name for m in evaluated} == clusters[cluster]
    if any(registry.get_task(t).has_options for t in clusters[cluster]):
      assert any(m.endswith("_rank") for m in evaluated)


def test_span_corruption_task_is_deterministic_and_uses_sentinels():
  task = seqio.get_mixture_or_task(corpus.TASK_NAME)
  lengths = {"inputs": 128, "targets": 32}

  def first(seed):
    ds = task.get_dataset(lengths, split="validation", shuffle=True, seed=seed)
    return [{k: v.tolist() for k, v in e.items()} for e in ds.take(4).as_numpy_iterator()]

  examples = first(7)
  assert examples == first(7)
  vocabulary = offline_vocabulary()
  sentinel = vocabulary.vocab_size - 1  # T5's first sentinel is the last id
  for example in examples:
    assert sentinel in example["inputs"] and sentinel in example["targets"]
    assert len(example["inputs"]) <= 128 and len(example["targets"]) <= 32
  # Every world fact is stated somewhere in the training corpus.
  text = " ".join(corpus.documents()["train"])
  world = flan_tune_tasks.offline.world.get_world()
  assert all(p.name in text and str(p.age) in text for p in world.people)


def _recipe():
  sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tools"))
  import train_offline_vocab
  return train_offline_vocab


def test_shipped_vocabulary_is_what_the_recipe_trains():
  recipe = _recipe()
  with open(offline_vocabulary().sentencepiece_model_file, "rb") as f:
    shipped = f.read()
  assert recipe.train(recipe.training_text(), recipe.VOCAB_SIZE) == shipped, (
      "the shipped offline_spm.model is stale: the collection's text changed; "
      "run `.venv/bin/python tools/train_offline_vocab.py` and commit the model")


def test_vocabulary_recipe_trains_a_t5_layout_model(tmp_path):
  train_offline_vocab = _recipe()
  texts = train_offline_vocab.training_text(examples_per_style=2)
  proto = train_offline_vocab.train(texts, vocab_size=800)
  assert proto == train_offline_vocab.train(texts, vocab_size=800)  # reproducible
  path = tmp_path / "v.model"
  path.write_bytes(proto)
  vocabulary = seqio.SentencePieceVocabulary(str(path), extra_ids=EXTRA_IDS)
  text = "Where does Ada live?\nOPTIONS:\n- yes\n- no"
  ids = vocabulary.encode(text)
  assert vocabulary.decode(ids) == text and 2 not in ids
  assert np.all(np.array(ids) < vocabulary.vocab_size - EXTRA_IDS)
