"""flan_tune_tasks.instruct: Alpaca, Dolly and OpenAssistant JSONL through the real seqio pipeline."""

import json

import gin
import pytest
import seqio

from conftest import write_jsonl
from flan_tune.errors import RegistrationError, SourceError, TemplateError
from flan_tune.tasks import Template, get_task, task_names
from flan_tune_tasks import instruct

LENGTHS = {"inputs": 512, "targets": 128}


def examples(name, split="train"):
  ds = seqio.get_mixture_or_task(name).get_dataset(sequence_length=LENGTHS, split=split,
                                                   shuffle=False)
  return [{k: (v.decode() if isinstance(v, bytes) else v.tolist()) for k, v in e.items()}
          for e in ds.as_numpy_iterator()]


def register(cleanup, function, name, *args, **kwargs):
  cleanup[0].append(name)
  return function(name, *args, **kwargs)


# --- Alpaca -------------------------------------------------------------------------------

def alpaca_rows(split, n):
  rows = []
  for i in range(n):
    row = {"instruction": f"{split} instruction {i}", "output": f"{split} output {i}"}
    if i % 3 == 0:
      row["input"] = f"{split} input {i}"
    elif i % 3 == 1:
      row["input"] = ""  # the third kind leaves `input` out
    rows.append(row)
  return rows


def test_alpaca_fields_with_and_without_input():
  with_input = instruct.alpaca_fields({"instruction": "Add.", "input": "2 and 3", "output": "5"})
  assert with_input["prompt"] == "Add.\n\n2 and 3"
  assert with_input["labeled_prompt"] == "Instruction: Add.\nInput: 2 and 3"
  for empty in ("", "  ", "<noinput>"):
    fields = instruct.alpaca_fields({"instruction": "Say hi.", "input": empty, "output": "hi"})
    assert (fields["prompt"], fields["labeled_prompt"]) == ("Say hi.", "Instruction: Say hi.")


def test_alpaca_registers_and_renders_every_style(tmp_path, unique, cleanup):
  files = {"train": write_jsonl(tmp_path / "train.jsonl", alpaca_rows("train", 8)),
           "validation": write_jsonl(tmp_path / "val.jsonl", alpaca_rows("val", 3))}
  names = register(cleanup, instruct.alpaca_task, unique, files)
  assert names == [f"{unique}_{s}" for s in ("zs_noopt", "fs_noopt", "zs_inv", "fs_inv")]
  assert len(instruct.request_templates("output")) >= 6
  zero_shot = examples(f"{unique}_zs_noopt")
  assert [e["targets_pretokenized"] for e in zero_shot] == [f"train output {i}" for i in range(8)]
  for i, e in enumerate(zero_shot):
    assert f"train instruction {i}" in e["inputs_pretokenized"]
    assert (f"train input {i}" in e["inputs_pretokenized"]) == (i % 3 == 0)
    assert "Input:" not in e["inputs_pretokenized"] or i % 3 == 0
  assert len({e["template_index"] for e in zero_shot}) > 1
  for e in examples(f"{unique}_fs_noopt", split="validation"):
    *shots, query = e["inputs_pretokenized"].split("\n\n\n")
    assert len(shots) == e["num_exemplars"] == 3
    assert all("train output" in shot for shot in shots) and "val instruction" in query
  for e in examples(f"{unique}_zs_inv", split="validation"):
    assert e["targets_pretokenized"].startswith("val instruction")
    assert "val output" in e["inputs_pretokenized"]


def test_alpaca_single_file_is_the_train_split(tmp_path, unique, cleanup):
  path = write_jsonl(tmp_path / "all.jsonl", alpaca_rows("train", 5))
  names = register(cleanup, instruct.alpaca_task, unique, path, cluster="chat", seed=3,
                   styles=["zs_noopt", "fs_noopt"],
                   templates=[Template("{labeled_prompt}\nResponse:", "{output}"),
                              Template("Write the request for: {output}", "{prompt}",
                                       inverted=True)])
  assert names == [f"{unique}_zs_noopt", f"{unique}_fs_noopt"]
  task = get_task(unique)
  assert (task.cluster, task.collection, task.seed) == ("chat", "instruct", 3)
  rendered = [e["inputs_pretokenized"] for e in examples(f"{unique}_zs_noopt")]
  assert rendered[:3] == ["Instruction: train instruction 0\nInput: train input 0\nResponse:",
                          "Instruction: train instruction 1\nResponse:",
                          "Instruction: train instruction 2\nResponse:"]
  few_shot = examples(f"{unique}_fs_noopt")
  assert all(e["num_exemplars"] == 3 for e in few_shot)


def test_unknown_template_field_fails_at_registration(tmp_path, unique, cleanup):
  path = write_jsonl(tmp_path / "a.jsonl", alpaca_rows("train", 5))
  with pytest.raises(TemplateError, match=r"template 0 names field\(s\) \['response'\]"):
    register(cleanup, instruct.alpaca_task, unique, path,
             templates=[Template("{prompt}", "{response}")])


def test_default_metric_is_rouge_on_strings(tmp_path, unique, cleanup):
  path = write_jsonl(tmp_path / "a.jsonl", alpaca_rows("train", 5))
  (name, *_) = register(cleanup, instruct.alpaca_task, unique, path)
  (metric,) = seqio.get_mixture_or_task(name).metric_fns
  scores = metric(["the cat sat"], ["the cat sat"])
  assert scores["rouge1"] == pytest.approx(100)


@pytest.mark.parametrize("rows, message", [
    ([{"instruction": "a", "output": "b"}, {"instruction": "c"}],
     r"bad.jsonl:2: missing key 'output'"),
    ([{"instruction": "a", "output": "b"}, "", '{"instruction": "c",'],
     r"bad.jsonl:3: invalid JSON"),
    ([{"instruction": " ", "output": "b"}], r"bad.jsonl:1: 'instruction' is empty"),
    ([{"instruction": "a", "output": None}], r"bad.jsonl:1: missing key 'output'"),
    ([{"instruction": "a", "output": ["b"]}], r"bad.jsonl:1: 'output' must be a string"),
    ([{"instruction": "a", "output": "b"}, "[1, 2]"],
     r"bad.jsonl:2: expected a JSON object, got list"),
    (["[1, 2]"], r"bad.jsonl\[0\]: expected a JSON object, got int"),
])
def test_malformed_alpaca_names_file_and_line(tmp_path, rows, message):
  source = instruct.AlpacaSource({"train": write_jsonl(tmp_path / "bad.jsonl", rows)})
  with pytest.raises(SourceError, match=message):
    source.records("train")


def test_extra_and_numeric_columns_are_tolerated(tmp_path):
  path = write_jsonl(tmp_path / "a.jsonl", [{"instruction": "a", "output": 5, "id": 1},
                                            {"instruction": "b", "output": "c", "input": None}])
  records = instruct.AlpacaSource({"train": path}).records("train")
  assert [(r["output"], r["input"]) for r in records] == [("5", ""), ("c", "")]


# --- Dolly --------------------------------------------------------------------------------

DOLLY_CATEGORIES = ("open_qa", "closed_qa", "brainstorming")


def dolly_rows(n):
  return [{"instruction": f"question {i}", "response": f"answer {i}",
           "category": DOLLY_CATEGORIES[i % 3],
           "context": f"passage {i}" if DOLLY_CATEGORIES[i % 3] == "closed_qa" else ""}
          for i in range(n)]


def test_dolly_category_filter_renders(tmp_path, unique, cleanup):
  path = write_jsonl(tmp_path / "dolly.jsonl", dolly_rows(15))
  names = register(cleanup, instruct.dolly_task, unique, path,
                   categories=["open_qa", "closed_qa"])
  assert f"{unique}_fs_noopt" in names
  source = get_task(unique).source
  kept = source.records("train")
  assert {r["category"] for r in kept} == {"open_qa", "closed_qa"} and len(kept) == 10
  rendered = examples(f"{unique}_zs_noopt")
  assert [e["targets_pretokenized"] for e in rendered] == [r["response"] for r in kept]
  for record, e in zip(kept, rendered):
    assert record["instruction"] in e["inputs_pretokenized"]
    if record["context"]:
      assert record["context"] in e["inputs_pretokenized"]
    else:
      assert "Context:" not in e["inputs_pretokenized"]
  fields = instruct.dolly_fields(kept[1])
  assert fields["category"] == "closed_qa"
  assert fields["labeled_prompt"] == "Instruction: question 1\nContext: passage 1"
  assert all(e["num_exemplars"] == 3 for e in examples(f"{unique}_fs_noopt"))


def test_dolly_unknown_category_lists_the_known_ones(tmp_path, unique, cleanup):
  path = write_jsonl(tmp_path / "dolly.jsonl", dolly_rows(6))
  with pytest.raises(SourceError, match=r"dolly.jsonl.*unknown categories \['summary'\]; "
                     r"the files contain \['brainstorming', 'closed_qa', 'open_qa'\]"):
    register(cleanup, instruct.dolly_task, unique, path, categories=["open_qa", "summary"])
  assert unique not in task_names()  # the error comes before anything is registered
  assert f"{unique}_zs_noopt" not in seqio.TaskRegistry.names()
  only = instruct.DollySource({"train": path}, categories="brainstorming")
  assert [r["instruction"] for r in only.records("train")] == ["question 2", "question 5"]


def test_dolly_missing_category_names_the_line(tmp_path):
  path = write_jsonl(tmp_path / "d.jsonl", [dolly_rows(1)[0],
                                            {"instruction": "q", "response": "r"}])
  with pytest.raises(SourceError, match=r"d.jsonl:2: missing key 'category'"):
    instruct.DollySource({"train": path}).records("train")


# --- OpenAssistant ------------------------------------------------------------------------

def message(message_id, parent_id, role, text, rank=None, lang="en", tree="t1"):
  return {"message_id": message_id, "parent_id": parent_id, "role": role, "text": text,
          "rank": rank, "lang": lang, "message_tree_id": tree}


# t1: p1 -> {a1 (rank 0) -> p2 -> {a3 (rank 1), a4 (rank 0)}, a2 (rank 1) -> p3 -> a5}
# t2 (German, the reply inherits `lang` from its prompt): q1 -> b1 (unranked)
MESSAGES = [
    message("p1", None, "prompter", "Name a cat?"),
    message("a1", "p1", "assistant", "Whiskers.", rank=0),
    message("p2", "a1", "prompter", "Something rarer?"),
    message("a3", "p2", "assistant", "Quasar.", rank=1),
    message("a4", "p2", "assistant", "Saffron.", rank=0),
    message("a2", "p1", "assistant", "Cat.", rank=1),
    message("p3", "a2", "prompter", "Boring."),
    message("a5", "p3", "assistant", "Mittens?"),
    message("q1", None, "prompter", "Wie spät ist es?", lang="de", tree="t2"),
    message("b1", "q1", "assistant", "Ich weiß es nicht.", lang=None, tree="t2"),
]
EXPECTED = {
    "a1": ("", "Name a cat?", "Whiskers."),
    "a2": ("", "Name a cat?", "Cat."),
    "a3": ("User: Name a cat?\nAssistant: Whiskers.", "Something rarer?", "Quasar."),
    "a4": ("User: Name a cat?\nAssistant: Whiskers.", "Something rarer?", "Saffron."),
    "a5": ("User: Name a cat?\nAssistant: Cat.", "Boring.", "Mittens?"),
    "b1": ("", "Wie spät ist es?", "Ich weiß es nicht."),
}


def as_trees(messages):
  """The same conversations in the tree shape: one nested tree per line."""
  nodes = {m["message_id"]: {k: v for k, v in m.items() if k != "parent_id"} | {"replies": []}
           for m in messages}
  trees = []
  for m in messages:
    if m["parent_id"] is None:
      trees.append({"message_tree_id": m["message_tree_id"], "prompt": nodes[m["message_id"]]})
    else:
      nodes[m["parent_id"]]["replies"].append(nodes[m["message_id"]])
  return trees


def triples(source):
  return {r["message_id"]: (r["history"], r["prompt"], r["reply"])
          for r in source.records("train")}


@pytest.fixture
def oasst_files(tmp_path):
  # Children before parents: the message-list shape must not depend on line order.
  return {"messages": write_jsonl(tmp_path / "messages.jsonl", MESSAGES[::-1]),
          "trees": write_jsonl(tmp_path / "trees.jsonl", as_trees(MESSAGES))}


def test_both_open_assistant_shapes_give_the_same_examples(oasst_files):
  by_shape = {shape: instruct.OpenAssistantSource({"train": path})
              for shape, path in oasst_files.items()}
  assert triples(by_shape["messages"]) == triples(by_shape["trees"]) == EXPECTED
  records = {r["message_id"]: r for r in by_shape["trees"].records("train")}
  assert (records["b1"]["lang"], records["b1"]["message_tree_id"]) == ("de", "t2")
  assert records["a5"]["_origin"] == f"{oasst_files['trees']}:1 (message a5)"
  assert by_shape["messages"].records("train")[0]["_origin"] == (
      f"{oasst_files['messages']}:1 (message b1)")


@pytest.mark.parametrize("shape", ["messages", "trees"])
def test_open_assistant_filters(oasst_files, shape):
  path = oasst_files[shape]
  best = instruct.OpenAssistantSource({"train": path}, best_only=True)
  # a5 answers a follow-up to a2, which lost to a1; b1 has no ranked siblings.
  assert set(triples(best)) == {"a1", "a4", "b1"}
  assert set(triples(instruct.OpenAssistantSource({"train": path}, lang="de"))) == {"b1"}
  english = instruct.OpenAssistantSource({"train": path}, lang=["en"], best_only=True)
  assert set(triples(english)) == {"a1", "a4"}
  short = triples(instruct.OpenAssistantSource({"train": path}, max_history_turns=1))
  assert short["a3"] == ("Assistant: Whiskers.", "Something rarer?", "Quasar.")
  assert triples(instruct.OpenAssistantSource({"train": path}, max_history_turns=0))["a5"][0] == ""


def test_open_assistant_task_renders(oasst_files, unique, cleanup):
  names = register(cleanup, instruct.open_assistant_task, unique, oasst_files["messages"])
  assert names == [f"{unique}_{s}" for s in ("zs_noopt", "fs_noopt", "zs_inv", "fs_inv")]
  rendered = examples(f"{unique}_zs_noopt")
  assert len(rendered) == len(EXPECTED)
  by_reply = {e["targets_pretokenized"]: e["inputs_pretokenized"] for e in rendered}
  assert "Name a cat?" in by_reply["Mittens?"] and "Cat." in by_reply["Mittens?"]
  assert "Boring." in by_reply["Mittens?"]
  assert "Assistant: Whiskers." not in by_reply["Whiskers."]
  # The default vocabulary is bytes: long conversations drop exemplars to fit 512 tokens.
  few_shot = examples(f"{unique}_fs_noopt")
  assert all(1 <= e["num_exemplars"] <= 3 for e in few_shot)
  assert any(e["num_exemplars"] == 3 for e in few_shot)
  inverted = examples(f"{unique}_zs_inv")
  assert sorted(e["targets_pretokenized"] for e in inverted) == sorted(
      prompt for _, prompt, _ in EXPECTED.values())


VALID = [message("m1", None, "prompter", "Hi"), message("m2", "m1", "assistant", "Hello")]


@pytest.mark.parametrize("third_line, message_pattern", [
    ('{"message_id": "m3", ', r"msgs.jsonl:3: invalid JSON"),
    ({"message_id": "m3", "parent_id": "m2", "role": "prompter"},
     r"msgs.jsonl:3 \(message m3\): missing key 'text'"),
    ({"message_id": "m3", "role": "prompter", "text": "x"},
     r"msgs.jsonl:3 \(message m3\): missing key 'parent_id'"),
    ({"parent_id": "m2", "role": "prompter", "text": "x"},
     r"msgs.jsonl:3: missing key 'message_id'"),
    (message("m3", "ghost", "prompter", "x"),
     r"msgs.jsonl:3 \(message m3\): parent_id 'ghost' never appears"),
    (message("m3", "m2", "assistant", "x"),
     r"msgs.jsonl:3 \(message m3\): roles must alternate, but this assistant message "
     r"replies to assistant message 'm2'"),
    (message("m3", "m3", "prompter", "x"), r"msgs.jsonl:3 \(message m3\): parent_id chain loops"),
    (message("m3", "m2", "prompter", "  "), r"msgs.jsonl:3 \(message m3\): 'text' is empty"),
    (message("m3", None, "assistant", "x"),
     r"msgs.jsonl:3 \(message m3\): a conversation must start with a prompter message"),
    (message("m3", "m2", "system", "x"), r"msgs.jsonl:3 \(message m3\): role must be one of"),
    (message("m1", "m2", "prompter", "x"),
     r"msgs.jsonl:3 \(message m1\): duplicate message_id; first seen at .*msgs.jsonl:1"),
    (message("m3", "m2", "prompter", "x", rank="best"),
     r"msgs.jsonl:3 \(message m3\): rank must be an integer"),
])
def test_malformed_message_list(tmp_path, third_line, message_pattern):
  path = write_jsonl(tmp_path / "msgs.jsonl", VALID + [third_line])
  with pytest.raises(SourceError, match=message_pattern):
    instruct.OpenAssistantSource({"train": path}).records("train")


def test_message_cycle_names_the_loop(tmp_path):
  path = write_jsonl(tmp_path / "msgs.jsonl", VALID + [message("c1", "c2", "prompter", "x"),
                                                       message("c2", "c1", "assistant", "y")])
  loop = r"msgs.jsonl:3 \(message c1\): parent_id chain loops \(c1 -> c2 -> c1\)"
  with pytest.raises(SourceError, match=loop):
    instruct.OpenAssistantSource({"train": path}).records("train")


@pytest.mark.parametrize("turns", [-1, 1.5])
def test_bad_max_history_turns(tmp_path, turns):
  with pytest.raises(RegistrationError, match="max_history_turns must be None or an integer"):
    instruct.OpenAssistantSource({"train": str(tmp_path / "x.jsonl")}, max_history_turns=turns)


def tree_line(*replies):
  return {"message_tree_id": "t", "prompt": {"message_id": "r1", "role": "prompter",
                                             "text": "Hi", "replies": list(replies)}}


@pytest.mark.parametrize("second_line, message_pattern", [
    (tree_line({"message_id": "r2", "role": "assistant"}),
     r"trees.jsonl:2 \(message r2\): missing key 'text'"),
    (tree_line({"message_id": "r2", "role": "assistant", "text": "a", "replies": [
        {"message_id": "r3", "role": "assistant", "text": "b"}]}),
     r"trees.jsonl:2 \(message r3\): roles must alternate"),
    (tree_line({"message_id": "r2", "role": "assistant", "text": ""}),
     r"trees.jsonl:2 \(message r2\): 'text' is empty"),
    (tree_line({"message_id": "r2", "role": "assistant", "text": "a", "replies": "none"}),
     r"trees.jsonl:2 \(message r2\): 'replies' must be a list"),
    ({"message_tree_id": "t", "prompt": "Hi"}, r"trees.jsonl:2: 'prompt' must be a message"),
    ('{"prompt": ', r"trees.jsonl:2: invalid JSON"),
])
def test_malformed_tree(tmp_path, second_line, message_pattern):
  first = {"message_tree_id": "t0", "prompt": {"message_id": "x1", "role": "prompter",
                                               "text": "Hey", "replies": []}}
  path = write_jsonl(tmp_path / "trees.jsonl", [first, second_line])
  with pytest.raises(SourceError, match=message_pattern):
    instruct.OpenAssistantSource({"train": path}).records("train")


def test_malformed_file_fails_through_seqio(tmp_path, unique, cleanup):
  path = write_jsonl(tmp_path / "msgs.jsonl", VALID + [message("m3", "zz", "prompter", "x")])
  register(cleanup, instruct.open_assistant_task, unique, path)
  with pytest.raises(SourceError, match=r"msgs.jsonl:3 \(message m3\): parent_id 'zz'"):
    examples(f"{unique}_zs_noopt")


# --- gin ----------------------------------------------------------------------------------

@pytest.fixture
def gin_config():
  gin.clear_config()
  yield gin
  gin.clear_config()


def test_gin_binds_every_task_function(tmp_path, unique, cleanup, gin_config, oasst_files):
  alpaca = write_jsonl(tmp_path / "alpaca.jsonl", alpaca_rows("train", 5))
  dolly = write_jsonl(tmp_path / "dolly.jsonl", dolly_rows(6))
  names = {kind: f"{unique}_{kind}" for kind in ("alpaca", "dolly", "oasst")}
  cleanup[0].extend(names.values())
  gin_config.parse_config(f"""
      import flan_tune_tasks.instruct
      alpaca_task.name = {json.dumps(names["alpaca"])}
      alpaca_task.files = {{"train": {json.dumps(alpaca)}}}
      alpaca_task.cluster = "from_gin"
      flan_tune_tasks.instruct.dolly_task.categories = ["closed_qa"]
      open_assistant_task.best_only = True
      open_assistant_task.styles = ["zs_noopt"]
  """)
  assert instruct.alpaca_task() == [f"{names['alpaca']}_{s}"
                                    for s in ("zs_noopt", "fs_noopt", "zs_inv", "fs_inv")]
  assert get_task(names["alpaca"]).cluster == "from_gin"
  instruct.dolly_task(names["dolly"], dolly)
  assert {r["category"] for r in get_task(names["dolly"]).source.records("train")} == {
      "closed_qa"}
  assert instruct.open_assistant_task(names["oasst"], oasst_files["trees"]) == [
      f"{names['oasst']}_zs_noopt"]
  assert get_task(names["oasst"]).source.best_only
