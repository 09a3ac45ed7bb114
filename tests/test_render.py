"""Every prompt style through the real seqio pipeline, on data the test writes."""

import pytest
import seqio

from conftest import sentiment_rows, write_jsonl
from flan_tune.errors import RegistrationError, SourceError, TemplateError
from flan_tune.tasks import FewShotConfig, JsonlSource, Template, register_task
from flan_tune.tasks.postprocessors import make_cot_answer_extractor
from flan_tune.tasks.preprocessors import METADATA_FEATURES

TEMPLATES = [
    Template("Review: {text}\nSentiment? {options_}", "{label}"),
    Template("{text}\nIs that positive or negative?", "{label}"),
    Template("Write a {label} review.", "{text}", inverted=True),
]
LENGTHS = {"inputs": 512, "targets": 64}


def register(tmp_path, unique, cleanup, train=40, validation=10, **kwargs):
  source = JsonlSource({"train": write_jsonl(tmp_path / "train.jsonl",
                                             sentiment_rows("train", train)),
                        "validation": write_jsonl(tmp_path / "val.jsonl",
                                                  sentiment_rows("validation", validation))})
  options = dict(templates=TEMPLATES, options=["positive", "negative"], rationale_field="why",
                 cluster="sentiment", collection="tests",
                 fewshot=FewShotConfig(k=2, pool_size=100))
  options.update(kwargs)
  cleanup[0].append(unique)
  return register_task(name=unique, source=source, **options)


def examples(name, split="validation", lengths=LENGTHS, **kwargs):
  ds = seqio.get_mixture_or_task(name).get_dataset(sequence_length=lengths, split=split,
                                                   shuffle=False, **kwargs)
  return [{k: (v.decode() if isinstance(v, bytes) else v.tolist()) for k, v in e.items()}
          for e in ds.as_numpy_iterator()]


def test_all_styles_registered(tmp_path, unique, cleanup):
  names = register(tmp_path, unique, cleanup)
  assert names == [f"{unique}_{s}" for s in
                   ("zs_opt", "zs_noopt", "fs_opt", "fs_noopt", "zs_cot", "fs_cot", "zs_inv",
                    "fs_inv",
                    "zs_opt_rank", "zs_noopt_rank", "fs_opt_rank", "fs_noopt_rank")]


@pytest.mark.parametrize("style", ["zs_opt", "fs_noopt"])
def test_rank_variant_scores_every_option(tmp_path, unique, cleanup, style):
  register(tmp_path, unique, cleanup)
  rows = examples(f"{unique}_{style}_rank")
  generated = examples(f"{unique}_{style}")
  assert len(rows) == 2 * len(generated)  # one row per option
  for i, prompt in enumerate(generated):
    pair = [r for r in rows if r["idx"][0] == i]
    assert [r["targets_pretokenized"] for r in pair] == ["positive", "negative"]
    assert all(r["inputs_pretokenized"] == prompt["inputs_pretokenized"] for r in pair)
    assert [r["is_correct"] for r in pair] == [
        option == prompt["targets_pretokenized"] for option in ("positive", "negative")]
    assert pair[0]["cluster"] == "sentiment"


def test_rank_variants_only_for_tasks_with_options(tmp_path, unique, cleanup):
  names = register(tmp_path, unique, cleanup, options=None,
                   templates=[Template("{text}\nIs that positive or negative?", "{label}")])
  assert not [n for n in names if n.endswith("_rank")]


def test_zero_shot_with_and_without_options(tmp_path, unique, cleanup):
  register(tmp_path, unique, cleanup)
  with_options = examples(f"{unique}_zs_opt")
  without = examples(f"{unique}_zs_noopt")
  for e in with_options:
    assert e["targets_pretokenized"] in ("positive", "negative")
    assert "positive" in e["inputs_pretokenized"] and "negative" in e["inputs_pretokenized"]
    assert e["template_index"] in (0, 1)
  for e, plain in zip(with_options, without):
    assert "{" not in plain["inputs_pretokenized"]
    assert not plain["inputs_pretokenized"].endswith(("?\n", " "))
  # Template 1 has no {options_} slot: the options block is appended after it.
  appended = [e for e in with_options if e["template_index"] == 1]
  assert appended and all("positive or negative?\n\n" in e["inputs_pretokenized"] for e in appended)


def test_metadata_passes_through(tmp_path, unique, cleanup):
  register(tmp_path, unique, cleanup)
  e = examples(f"{unique}_fs_noopt")[0]
  assert set(METADATA_FEATURES) <= set(e)
  assert (e["task"], e["collection"], e["cluster"], e["template_type"]) == (
      f"{unique}_fs_noopt", "tests", "sentiment", "fs_noopt")


def test_few_shot_exemplars_come_from_train_and_never_the_example(tmp_path, unique, cleanup):
  register(tmp_path, unique, cleanup)
  train_texts = {r["text"] for r in sentiment_rows("train", 40)}
  for split in ("validation", "train"):
    for e in examples(f"{unique}_fs_noopt", split=split):
      *shots, query = e["inputs_pretokenized"].split("\n\n\n")
      assert len(shots) == e["num_exemplars"] == 2
      query_text = query.split("\n")[0].removeprefix("Review: ")
      for shot in shots:
        shot_input, shot_target = shot.rsplit("\n\n", 1)
        shot_text = shot_input.split("\n")[0].removeprefix("Review: ")
        assert shot_text in train_texts  # never from the validation split
        assert shot_text != query_text  # never the example itself
        assert shot_target in ("positive", "negative")


def test_few_shot_prunes_exemplars_to_fit_the_input_length(tmp_path, unique, cleanup):
  register(tmp_path, unique, cleanup, fewshot=FewShotConfig(k=4, pool_size=100))
  lengths = {"inputs": 120, "targets": 64}  # bytes: room for about one exemplar
  pruned = examples(f"{unique}_fs_noopt", lengths=lengths)
  assert any(e["num_exemplars"] < 4 for e in pruned)
  for e in pruned:
    assert len(e["inputs_pretokenized"].encode()) + 1 <= 120
    assert e["inputs_pretokenized"].count("\n\n\n") == e["num_exemplars"]


def test_chain_of_thought_and_its_postprocessor(tmp_path, unique, cleanup):
  register(tmp_path, unique, cleanup)
  for e in examples(f"{unique}_zs_cot"):
    assert e["targets_pretokenized"].startswith("it was ")
    answer = make_cot_answer_extractor()(e["targets_pretokenized"])
    assert answer in ("positive", "negative")
  task = seqio.get_mixture_or_task(f"{unique}_zs_cot")
  assert task.postprocess_fn("it was bad So the answer is negative.") == "negative"


def test_inverted_templates_only_in_inverted_styles(tmp_path, unique, cleanup):
  register(tmp_path, unique, cleanup)
  assert {e["template_index"] for e in examples(f"{unique}_zs_inv")} == {2}
  assert all(e["inputs_pretokenized"].startswith("Write a ") for e in examples(f"{unique}_zs_inv"))
  assert 2 not in {e["template_index"] for e in examples(f"{unique}_zs_noopt", split="train")}


def test_same_seed_same_examples_other_seed_differs(tmp_path, unique, cleanup):
  register(tmp_path, unique, cleanup)
  first = examples(f"{unique}_fs_opt", split="train")
  assert first == examples(f"{unique}_fs_opt", split="train")
  shuffled = examples(f"{unique}_fs_opt", split="train", seed=3)

  def by_input(rows):
    return sorted(rows, key=lambda e: e["inputs_pretokenized"])

  assert by_input(shuffled) == by_input(first)  # order-independent rendering
  other = f"{unique}_s2"
  register(tmp_path, other, cleanup, seed=1)
  assert [e["inputs_pretokenized"] for e in examples(f"{other}_fs_opt", split="train")] != [
      e["inputs_pretokenized"] for e in first]


def test_few_shot_k_larger_than_pool(tmp_path, unique, cleanup):
  register(tmp_path, unique, cleanup, train=3, fewshot=FewShotConfig(k=3, pool_size=10))
  with pytest.raises(RegistrationError, match=rf"task '{unique}_fs_noopt': few-shot k=3 needs "
                                              r"a pool of at least 4 examples .* gave 3"):
    examples(f"{unique}_fs_noopt")


def test_missing_options_field(tmp_path, unique, cleanup):
  rows = [{"q": f"q{i}", "a": "x", "choices": ["x", "y"]} for i in range(5)]
  rows[3] = {"q": "q3", "a": "x", "choices": []}
  path = write_jsonl(tmp_path / "mc.jsonl", rows)
  cleanup[0].append(unique)
  register_task(name=unique, source=JsonlSource({"train": path}), cluster="qa",
                templates=[Template("{q} {options_}", "{a}")], options_field="choices",
                styles=["zs_opt"])
  with pytest.raises(Exception, match=r"mc.jsonl:4: the options field 'choices' must be a "
                                      "non-empty list"):
    examples(f"{unique}_zs_opt", split="train")


def test_template_field_missing_from_example_names_file_and_line(tmp_path, unique, cleanup):
  path = write_jsonl(tmp_path / "d.jsonl", [{"q": "a", "a": "b"}])
  cleanup[0].append(unique)
  register_task(name=unique, source=JsonlSource({"train": path}), cluster="qa",
                templates=[Template("{question}", "{a}")])
  with pytest.raises(TemplateError, match=rf"task '{unique}_zs_noopt', template 0, example "
                                          r".*d.jsonl:1: no field 'question'"):
    examples(f"{unique}_zs_noopt", split="train")


def test_target_outside_options_is_an_error(tmp_path, unique, cleanup):
  path = write_jsonl(tmp_path / "d.jsonl", [{"q": "a", "a": "maybe"}])
  cleanup[0].append(unique)
  register_task(name=unique, source=JsonlSource({"train": path}), cluster="qa",
                templates=[Template("{q} {options_}", "{a}")], options=["yes", "no"],
                styles=["zs_opt"])
  with pytest.raises(SourceError, match=r"d.jsonl:1: target 'maybe' is not one of the options"):
    examples(f"{unique}_zs_opt", split="train")


def test_duplicate_task_name(tmp_path, unique, cleanup):
  register(tmp_path, unique, cleanup)
  with pytest.raises(RegistrationError, match=f"task '{unique}' is already registered"):
    register(tmp_path, unique, cleanup)


def test_unknown_field_at_registration_with_field_map(tmp_path, unique, cleanup):
  path = write_jsonl(tmp_path / "d.jsonl", [{"q": "a", "a": "b"}])
  with pytest.raises(TemplateError, match=r"template 0 names field\(s\) \['question'\]"):
    register_task(name=unique, source=JsonlSource({"train": path}, fields={"q": "q", "a": "a"}),
                  cluster="qa", templates=[Template("{question}", "{a}")])


@pytest.mark.parametrize("prompt, expected", [
    ("What is 2 + 2?", "What is 2 + 2?\n\nThink."),
    ("Question: What is 2 + 2?\nAnswer:", "Question: What is 2 + 2?\n\nThink.\nAnswer:"),
    ("Q: What is 2 + 2?\n\nA: ", "Q: What is 2 + 2?\n\nThink.\nA:"),
])
def test_chain_of_thought_trigger_goes_before_a_closing_answer_cue(prompt, expected):
  from flan_tune.tasks.render import _with_trigger
  assert _with_trigger(prompt, "Think.") == expected


def test_each_pass_draws_its_template_anew(tmp_path, unique, cleanup):
  """FLAN draws a template every time an example is used: rendering in pass (epoch) 1, 2,
  ... gives other templates than pass 0, deterministically; pass 0 is evaluation's."""
  from flan_tune.tasks import registry, render

  path = tmp_path / "t.jsonl"
  path.write_text("".join(f'{{"q": "question {i}", "a": "yes"}}\n' for i in range(5)))
  cleanup[0].append(unique)
  register_task(name=unique, source=JsonlSource({"train": str(path)}), cluster="qa",
                templates=[Template(f"{{q}} ({i})", "{a}") for i in range(8)],
                styles=["zs_noopt"])
  task = registry.get_task(unique)
  renderer = render.PromptRenderer(task, registry.variants_of(unique)[0].style,
                                   count_tokens=len, max_input_tokens=100)
  fields = render.example_fields(task, task.source.records("train")[0])
  passes = [renderer.render(fields, epoch=e).template_index for e in range(12)]
  assert len(set(passes)) > 3
  assert passes == [renderer.render(fields, epoch=e).template_index for e in range(12)]
  assert renderer.render(fields).template_index == passes[0]
