"""The real collections in their published layouts: Natural Instructions v2 checkouts and
FLAN 2022 submix files, written small by tools/collection_files.py in those schemas."""

import glob
import gzip
import json
import os
import sys

import numpy as np
import pytest
import seqio

from flan_tune import cli
from flan_tune.errors import RegistrationError, SourceError
from flan_tune.mixtures import capped_rates, mixture_rates
from flan_tune.mixtures.inspection import shares_by
from flan_tune.tasks import get_task, metrics
from flan_tune.tasks.json_spans import array_item_spans
from flan_tune.tasks.preprocessors import load_exemplar_pool
from flan_tune.tasks.render import PromptRenderer, example_fields
from flan_tune.tasks.templates import PromptStyle
from flan_tune.training.input_pipeline import DataIterator, TrainInput
from flan_tune_tasks import flan2022, natural_instructions

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import collection_files  # noqa: E402


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
  monkeypatch.setenv("FLAN_TUNE_CACHE_DIR", str(tmp_path / "cache"))
  return tmp_path / "cache"


def _forget(cleanup, names):
  tasks, mixtures = cleanup
  for key in ("train", "test"):
    tasks.extend(names.get(key, []))
  for submix in names.get("tasks", {}).values():
    tasks.extend(submix)
  mixtures.extend(n for n in (names.get("mixture"), names.get("eval_mixture")) if n)


def register_niv2(cleanup, root, unique, **kwargs):
  names = natural_instructions.natural_instructions(str(root), prefix=unique, **kwargs)
  _forget(cleanup, names)
  return names


# --- JSON spans ---------------------------------------------------------------------------

def test_spans_find_each_instance_through_escapes_and_brackets_in_strings():
  obj = {"Definition": ["say \"hi\" \\"], "Instances": [
      {"input": "a [ { \\\" }", "output": ["]"]}, {"input": "b", "output": ["c", "d"]}],
         "Categories": ["QA"]}
  data = json.dumps(obj, indent=2).encode()
  spans, others = array_item_spans(data, "Instances", "f.json")
  assert [json.loads(data[a:b]) for a, b in spans] == obj["Instances"]
  assert others == {**obj, "Instances": []}


@pytest.mark.parametrize("text,message", [
    (b'{"Instances": [{"input": "x"}', "f.json:1: malformed JSON (brackets"),
    (b'{"Definition": []}', "no top-level 'Instances' array"),
    (b'{"Instances": [{"a": 1}, "bare"]}', "every item of 'Instances' must be"),
    (b'{"Instances": {}}', "'Instances' must be a JSON array"),
    (b'{"Definition": [1,, 2],\n "Instances": []}', "f.json:1: malformed JSON (Expecting"),
])
def test_spans_reject_malformed_files_naming_them(text, message):
  with pytest.raises(SourceError, match=message.replace("(", r"\(").replace("[", r"\[")):
    array_item_spans(text, "Instances", "f.json")


# --- Natural Instructions v2 --------------------------------------------------------------

def test_niv2_registers_the_official_split_with_its_filters(tmp_path, unique, cleanup):
  listed = collection_files.write_niv2(tmp_path, 8, 3, num_excluded=2, non_english=2,
                                       first_number=662)
  names = register_niv2(cleanup, tmp_path, unique, eval_instances=5)
  kept = [n for n in listed["train"][2:] if not 664 <= int(n[4:7]) <= 667]
  assert names["train"] == [f"{unique}_{n}" for n in kept]  # no Spanish, no MMLU overlap
  assert names["test"] == [f"{unique}_{n}" for n in listed["test"]]
  assert {m.rsplit("_", 2)[0] for m in mixture_rates(names["mixture"])} == set(names["train"])
  test_task = get_task(names["test"][0])
  assert test_task.source.num_input_examples("test") == 5
  assert len(test_task.source.records("test")) == 5
  everything = register_niv2(cleanup, tmp_path, unique + "all", languages=None,
                             drop_mmlu_overlap=False)
  assert len(everything["train"]) == 8


def test_niv2_categories_filter_and_unknown_category(tmp_path, unique, cleanup):
  collection_files.write_niv2(tmp_path, 12, 6)
  names = register_niv2(cleanup, tmp_path, unique, categories=["Summarization"])
  assert {get_task(n).cluster for n in names["train"] + names["test"]} == {"summarization"}
  with pytest.raises(RegistrationError, match=r"unknown categories \['Poetry'\].*"
                                              "Question Answering"):
    register_niv2(cleanup, tmp_path, unique + "x", categories=["Poetry"])


def test_niv2_prompts_lead_with_the_definition_and_draw_positive_exemplars(
    tmp_path, unique, cleanup):
  collection_files.write_niv2(tmp_path, 2, 1, instances=(30, 30))
  names = register_niv2(cleanup, tmp_path, unique)
  task = get_task(names["train"][0])
  definition = task.example_fn({"input": "", "output": ["x"]})["definition"]
  positives = [e["input"] for e in task.source.task_file.positive_examples]
  record = task.source.records("train")[3]
  fields = example_fields(task, record)
  zero_shot = PromptRenderer(task, PromptStyle.ZS_NOOPT, lambda t: len(t.split()), 4096)
  rendered = {zero_shot.render(fields, template_index=i).inputs: i for i in range(4)}
  for inputs, index in rendered.items():
    assert definition in inputs and record["input"] in inputs
    if index == 3:  # the inline example, with its explanation
      first = task.source.task_file.positive_examples[0]
      assert first["input"] in inputs and first["explanation"] in inputs
  few_shot = PromptRenderer(task, PromptStyle.FS_NOOPT, lambda t: len(t.split()), 4096,
                            pool=load_exemplar_pool(task))
  result = few_shot.render(fields)
  assert result.inputs.startswith(definition + "\n\n") and result.inputs.count(definition) == 1
  assert result.num_exemplars == task.fewshot.k
  assert sum(p in result.inputs for p in positives) == task.fewshot.k
  assert result.targets == record["output"][0]


def test_niv2_malformed_file_and_missing_file_are_errors_naming_them(tmp_path, unique,
                                                                      cleanup):
  listed = collection_files.write_niv2(tmp_path, 3, 1)
  broken = tmp_path / "tasks" / f"{listed['train'][1]}.json"
  broken.write_text(broken.read_text()[:-40])
  with pytest.raises(SourceError, match=f"{broken}:\\d+: malformed JSON"):
    register_niv2(cleanup, tmp_path, unique)
  broken.unlink()
  with pytest.raises(RegistrationError, match=f"train_tasks.txt names task "
                                              f"'{listed['train'][1]}', but .*does not exist"):
    register_niv2(cleanup, tmp_path, unique)


def test_niv2_bad_instance_is_an_error_naming_file_and_instance(tmp_path, unique, cleanup):
  listed = collection_files.write_niv2(tmp_path, 2, 1, instances=(5, 5))
  path = tmp_path / "tasks" / f"{listed['train'][0]}.json"
  task_json = json.loads(path.read_text())
  task_json["Instances"][2]["output"] = []
  path.write_text(json.dumps(task_json))
  names = register_niv2(cleanup, tmp_path, unique)
  records = get_task(names["train"][0]).source.records("train")
  with pytest.raises(SourceError, match=r"Instances\[2\]: an instance needs .*'output'"):
    records[2]  # pylint: disable=pointless-statement


def test_niv2_index_is_cached_and_rebuilt_when_a_file_changes(tmp_path, unique, cleanup,
                                                              cache_dir):
  listed = collection_files.write_niv2(tmp_path, 2, 1, instances=(6, 6))
  register_niv2(cleanup, tmp_path, unique)
  assert len(list((cache_dir / "natural_instructions").glob("*.npy"))) == 3
  path = tmp_path / "tasks" / f"{listed['train'][0]}.json"
  task_json = json.loads(path.read_text())
  task_json["Instances"] = task_json["Instances"][:4]
  path.write_text(json.dumps(task_json))
  names = register_niv2(cleanup, tmp_path, unique + "again")
  assert get_task(names["train"][0]).source.num_input_examples("train") == 4


def test_niv2_evaluation_scores_against_every_reference(tmp_path, unique, cleanup):
  collection_files.write_niv2(tmp_path, 2, 1, instances=(4, 4))
  names = register_niv2(cleanup, tmp_path, unique, eval_instances=3)
  task = seqio.get_mixture_or_task(f"{names['test'][0]}_zs_noopt")
  examples = list(task.get_dataset({"inputs": 256, "targets": 32}, split="test",
                                   shuffle=False).as_numpy_iterator())
  assert len(examples) == 3
  instance = get_task(names["test"][0]).source.records("test")[0]
  targets = task.postprocess_fn(examples[0]["targets_pretokenized"], example=examples[0],
                                is_target=True)
  assert targets == instance["output"]
  scores = task.metric_fns[0]([targets], [instance["output"][-1]])
  assert scores == {"rougeL": 100.0, "exact_match": 100.0}


def test_rouge_l_and_exact_match_follow_the_official_normalization():
  scores = metrics.rouge_l_exact_match([["The cat sat.", "a dog"], "running fast"],
                                       ["cat sat", "runs quickly"])
  assert scores["exact_match"] == 50.0  # articles and punctuation dropped; no stemming
  # ROUGE-L keeps articles: "the cat sat" vs "cat sat" is F = 2 * 1 * (2/3) / (5/3) = 0.8;
  # "running" and "runs" share a stem, "fast" and "quickly" do not: F = 0.5
  assert scores["rougeL"] == pytest.approx((80.0 + 50.0) / 2)


def test_rouge_is_t5s_per_example_rouge_averaged_and_deterministic():
  """t5's rouge of one example is that example's score (its bootstrap has one value to
  resample); ours averages those, where t5 takes an unseeded bootstrap median."""
  import t5.evaluation.metrics as t5_metrics

  targets = ["the cat sat on the mat . it slept .", "a summary", ["two refs", "ignored"]]
  predictions = ["the cat sat . it slept on the mat .", "nothing alike", "two refs"]
  each = metrics.per_example(metrics.rouge, targets, predictions)
  for one, target, prediction in zip(each, ["the cat sat on the mat . it slept .",
                                            "a summary", "two refs"], predictions):
    assert one == pytest.approx(t5_metrics.rouge([target], [prediction]))
  overall = metrics.rouge(targets, predictions)
  assert overall == pytest.approx({key: np.mean([one[key] for one in each]) for key in each[0]})
  assert metrics.rouge(targets, predictions) == overall
  assert metrics.per_example(metrics.accuracy, ["a", "b"], ["a", "c"]) == [
      {"accuracy": 100.0}, {"accuracy": 0.0}]


def test_niv2_trains_through_the_grain_input(tmp_path, unique, cleanup):
  collection_files.write_niv2(tmp_path, 4, 1, instances=(20, 60))
  names = register_niv2(cleanup, tmp_path, unique)
  cfg = TrainInput(mixture_or_task_name=names["mixture"], batch_size=4, num_workers=0,
                   task_feature_lengths={"inputs": 128, "targets": 16}, pack_window=16)
  iterator = DataIterator(cfg)
  assert iterator.grain_path
  first = [next(iterator) for _ in range(3)]
  state = iterator.state()
  after = next(iterator)
  resumed = DataIterator(cfg)
  resumed.restore(state)
  np.testing.assert_array_equal(next(resumed)["encoder_input_tokens"],
                                after["encoder_input_tokens"])
  assert first[0]["encoder_input_tokens"].shape == (4, 128)


# --- FLAN 2022 submix files ---------------------------------------------------------------

def write_submix_files(root):
  jsonl = collection_files.write_submix(root / "jsonl", sources=("flan", "t0"),
                                        file_format="jsonl.gz", rows_per_file=40)
  collection_files.write_submix(root / "parquet", sources=("niv2", "cot"),
                                file_format="parquet", rows_per_file=40, row_group_size=8)
  plain = collection_files.write_submix(root / "plain", sources=("dialog",),
                                        template_types=("zs_opt", "fs_opt"), rows_per_file=30)
  return {"flan2021": str(root / "jsonl" / "flan_*"),
          "t0": [p for p in jsonl if "/t0_" in p],
          "niv2": str(root / "parquet" / "niv2_*.parquet"),
          "cot": str(root / "parquet" / "cot_*"), "dialog": plain}


def register_submix(cleanup, files, unique, **kwargs):
  names = flan2022.flan2022_submix(files, prefix=unique, **kwargs)
  _forget(cleanup, names)
  return names


def _rows(path):
  if path.endswith(".parquet"):
    import pyarrow.parquet as pq
    return pq.read_table(path).to_pylist()
  with (gzip.open(path, "rt") if path.endswith(".gz") else open(path)) as f:
    return [json.loads(line) for line in f]


@pytest.mark.parametrize("copy_parquet", [True, False])
def test_submix_tasks_keep_rows_as_they_are(tmp_path, unique, cleanup, copy_parquet):
  files = write_submix_files(tmp_path)
  names = register_submix(cleanup, files, unique, copy_parquet=copy_parquet)
  every_row = [row for pattern in files.values()
               for path in ([pattern] if isinstance(pattern, str) else pattern)
               for match in sorted(glob.glob(path)) for row in _rows(match)]
  by_task = {}
  for row in every_row:
    by_task.setdefault((row["task_name"], row["template_type"]), []).append(row)
  registered = [get_task(n) for submix in names["tasks"].values() for n in submix]
  assert len(registered) == len(by_task)
  for task in registered:
    records = task.source.records("train")
    key = (records[0]["task_name"], records[0]["template_type"])
    assert task.name.endswith(key[1]) and task.prerendered
    assert [{k: r[k] for k in flan2022.COLUMNS} for r in records] == by_task[key]
    if task.collection in ("niv2", "cot"):  # the Parquet files
      assert records[0]["_origin"].startswith(str(tmp_path / "parquet"))
      assert ("row group" in records[0]["_origin"]) != copy_parquet
    rendered = PromptRenderer(task, PromptStyle(key[1]), len, 512).render(
        example_fields(task, records[0]))
    assert (rendered.inputs, rendered.targets) == (records[0]["inputs"], records[0]["targets"])
  assert names["rows"] == {"flan2021": 160, "t0": 160, "niv2": 160, "cot": 160, "dialog": 60}


def test_submix_weights_and_caps_come_from_the_row_counts(tmp_path, unique, cleanup):
  files = write_submix_files(tmp_path)
  names = register_submix(cleanup, files, unique, caps={"flan2021": 3})
  shares = {group: share for group, share, _ in
            shares_by(mixture_rates(names["mixture"]), "collection")}
  assert shares == pytest.approx(flan2022.SUBMIX_WEIGHTS)
  capped = capped_rates(names["mixture"])
  flan_members = names["tasks"]["flan2021"]
  assert {capped[m] for m in flan_members} == {3.0}
  t0 = {m: get_task(m).source.num_input_examples("train") for m in names["tasks"]["t0"]}
  assert {m: capped[m] for m in t0} == {m: float(n) for m, n in t0.items()}
  without_dialog = register_submix(cleanup, {k: v for k, v in files.items() if k != "dialog"},
                                   unique + "nd")
  shares = dict((g, s) for g, s, _ in shares_by(mixture_rates(without_dialog["mixture"]),
                                                "collection"))
  assert shares["flan2021"] == pytest.approx(0.4 / 0.97)


def test_submix_bad_files_are_errors_naming_file_and_line(tmp_path, unique, cleanup):
  good = collection_files.write_submix(tmp_path, sources=("flan",), rows_per_file=5)[0]
  lines = open(good).read().splitlines()
  bad = json.loads(lines[2])
  del bad["template_type"]
  with open(good, "w") as f:
    f.write("\n".join(lines[:2] + [json.dumps(bad)] + lines[3:]) + "\n")
  with pytest.raises(SourceError, match=f"{good}:3: a row needs string columns"):
    register_submix(cleanup, {"flan2021": good}, unique)
  weird = collection_files.write_submix(tmp_path / "w", sources=("t0",),
                                        template_types=("freeform",), rows_per_file=3)[0]
  with pytest.raises(SourceError, match="template_type 'freeform' names no prompt style"):
    register_submix(cleanup, {"t0": weird}, unique)
  with pytest.raises(RegistrationError, match="no file '.*/missing_\\*'"):
    register_submix(cleanup, {"t0": str(tmp_path / "missing_*")}, unique)
  with pytest.raises(RegistrationError, match=r"no weight for submix\(es\) \['mine'\]"):
    register_submix(cleanup, {"mine": weird}, unique)


def test_submix_trains_and_resumes_through_the_grain_input(tmp_path, unique, cleanup):
  names = register_submix(cleanup, write_submix_files(tmp_path), unique)
  cfg = TrainInput(mixture_or_task_name=names["mixture"], batch_size=4, num_workers=0,
                   task_feature_lengths={"inputs": 128, "targets": 16}, pack_window=32)
  iterator = DataIterator(cfg)
  assert iterator.grain_path
  for _ in range(5):
    next(iterator)
  state = iterator.state()
  expected = [next(iterator)["encoder_input_tokens"] for _ in range(3)]
  resumed = DataIterator(cfg)
  resumed.restore(state)
  for batch in expected:
    np.testing.assert_array_equal(next(resumed)["encoder_input_tokens"], batch)


def test_inspect_samples_a_collection_from_a_gin_run(tmp_path, capsys, unique):
  files = write_submix_files(tmp_path)
  bindings = [f"--gin.{macro}={json.dumps(files[submix])}" for macro, submix in (
      ("FLAN2021_FILES", "flan2021"), ("T0_FILES", "t0"), ("NIV2_FILES", "niv2"),
      ("COT_FILES", "cot"), ("DIALOG_FILES", "dialog"))]
  code = cli.main(["inspect", "--gin_file=runs/flan2022.gin", *bindings,
                   f"--gin.flan2022_submix.prefix='{unique}'",
                   f"--gin.MIXTURE_OR_TASK_NAME='{unique}'", "--mode=sampled",
                   "--draws=300", "--lengths=inputs=256,targets=32"])
  out = capsys.readouterr().out
  assert code == 0, out
  assert f"== {unique}: " in out and "Mixture share by collection:" in out
  assert "flan2021    40.0%" in out and "dialog       3.0%" in out
  assert "first 300 draws" in out and "training's best-fit packer" in out
  from flan_tune.tasks import registry
  from flan_tune.mixtures import unregister_mixture
  unregister_mixture(unique)
  registry.unregister([t for t in registry.task_names() if t.startswith(unique + "_")])


def test_niv2_evaluates_per_task_and_category_with_rouge_l(tmp_path, unique, cleanup):
  import jax

  import training_runs as runs_lib
  from flan_tune.evaluation.evaluator import EvalConfig, Evaluator
  from flan_tune.model import network
  from flan_tune.runtime.model import EncoderDecoderModel

  collection_files.write_niv2(tmp_path / "niv2", 2, 2, instances=(6, 6))
  names = register_niv2(cleanup, tmp_path / "niv2", unique, eval_instances=3)
  model = network.T5(runs_lib.TINY)
  params = network.unbox(network.init_variables(model, jax.random.key(0))["params"])
  evaluator = Evaluator(EvalConfig(mixture_or_task_name=names["eval_mixture"], split="test",
                                   batch_size=4, task_feature_lengths={"inputs": 64,
                                                                       "targets": 8}),
                        EncoderDecoderModel(model), str(tmp_path / "eval"))
  results = evaluator.evaluate(params, model_name="random", step=0,
                               trained_on=names["mixture"])
  assert set(results.tasks) == {f"{t}_{s}" for t in names["test"]
                                for s in ("zs_noopt", "fs_noopt")}
  for name, task in results.tasks.items():
    assert task.primary_metric == "rougeL" and task.held_out
    assert set(task.metrics) == {"rougeL", "exact_match"}
    assert len(task.example_scores) == 3
    assert task.cluster == get_task(name.rsplit("_", 2)[0]).cluster


WORKER = """
import pickle, sys
plan = pickle.load(open(sys.argv[1], "rb"))
from flan_tune.training.grain_input import TokenizeExample
tokenize = TokenizeExample(plan.members, plan.lengths)
for position in range(64):
  inputs, targets = tokenize(plan.sampler[position])
  assert len(inputs) and len(targets)
heavy = sorted(m for m in ("tensorflow", "seqio", "tensorflow_datasets") if m in sys.modules)
print("imported:", heavy)
"""


@pytest.mark.parametrize("collection", ["niv2", "flan2022"])
def test_input_workers_render_the_collections_without_tensorflow(tmp_path, unique, cleanup,
                                                                 collection):
  import pickle
  import subprocess

  from flan_tune.training.input_pipeline import grain_plan

  if collection == "niv2":
    collection_files.write_niv2(tmp_path / "data", 3, 1, instances=(10, 20))
    mixture = register_niv2(cleanup, tmp_path / "data", unique)["mixture"]
  else:
    mixture = register_submix(cleanup, write_submix_files(tmp_path), unique)["mixture"]
  plan, why = grain_plan(TrainInput(mixture_or_task_name=mixture,
                                    task_feature_lengths={"inputs": 128, "targets": 16}))
  assert plan is not None, why
  with open(tmp_path / "plan.pkl", "wb") as f:
    pickle.dump(plan, f)  # what Grain sends its worker processes
  done = subprocess.run([sys.executable, "-c", WORKER, str(tmp_path / "plan.pkl")],
                        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ":".join(
                            sys.path)})
  assert done.returncode == 0, done.stderr[-2000:]
  assert "imported: []" in done.stdout


def test_the_shipped_run_configs_train_on_both_collections(tmp_path):
  """`flan-tune train --gin_file=runs/flan2022.gin` (and natural_instructions.gin) as the
  README gives them, with the files as macros, on a tiny model: two steps each."""
  import training_runs as runs_lib

  initial = tmp_path / "t5_tiny"
  runs_lib.write_initial_checkpoint(initial)
  files = write_submix_files(tmp_path / "submix")
  collection_files.write_niv2(tmp_path / "niv2", 3, 1, instances=(10, 20))
  macros = {"flan2022": [f"--gin.{macro}={json.dumps(files[submix])}" for macro, submix in (
      ("FLAN2021_FILES", "flan2021"), ("T0_FILES", "t0"), ("NIV2_FILES", "niv2"),
      ("COT_FILES", "cot"), ("DIALOG_FILES", "dialog"))],
            "natural_instructions": [f"--gin.NIV2_PATH='{tmp_path / 'niv2'}'"]}
  for run, bindings in macros.items():
    model_dir = tmp_path / run
    args = [arg for arg in runs_lib.train_args(model_dir, 2, initial)
            if not arg.startswith("--gin.MIXTURE_OR_TASK_NAME")]
    args[args.index("--gin_file=runs/finetune.gin")] = f"--gin_file=runs/{run}.gin"
    process = runs_lib.start([*args, *bindings, "--gin.TrainInput.num_workers=0"],
                             tmp_path / f"{run}.log")
    runs_lib.finish_ok(process)
    assert runs_lib.logged_steps(model_dir) == 2, run


def test_submix_task_names_seqio_cannot_take_stay_distinct(tmp_path, unique, cleanup):
  rows = [{"inputs": f"q{i}", "targets": "a", "task_source": "Flan2021",
           "task_name": name, "template_type": template_type}
          for i, (name, template_type) in enumerate(
              [("glue/cola:2.0.0", "zs_opt"), ("glue_cola_2.0.0", "zs_opt"),
               ("glue/cola:2.0.0", "fs_noopt")] * 2)]
  path = tmp_path / "rows.jsonl"
  path.write_text("".join(json.dumps(r) + "\n" for r in rows))
  names = register_submix(cleanup, {"flan2021": str(path)}, unique)["tasks"]["flan2021"]
  assert len(names) == len(set(names)) == 3
  assert f"{unique}_flan2021_glue_cola_2.0.0_fs_noopt" in names
  by_name = {get_task(n).source.records("train")[0]["task_name"] for n in names}
  assert by_name == {"glue/cola:2.0.0", "glue_cola_2.0.0"}
