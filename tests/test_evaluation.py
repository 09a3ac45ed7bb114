"""Evaluation (flan_tune/evaluation/evaluator.py, evaluate.py): rank classification,
per-example scores, held-in/held-out marks, and train -> eval -> compare end to end on a
tiny model and two tiny tasks a user registers from a file."""

import json
import os

import gin
import jax
import numpy as np
import pytest

import training_runs as runs_lib
from conftest import write_jsonl
from flan_tune import cli
from flan_tune.errors import FlanTuneError
from flan_tune.evaluation import results as results_lib
from flan_tune.evaluation.evaluator import EvalConfig, Evaluator
from flan_tune.model import decoding, network
from flan_tune.runtime.model import EncoderDecoderModel

pytestmark = pytest.mark.xdist_group("evaluation")

USER_TASKS = '''
from flan_tune.mixtures import builder
from flan_tune.tasks import JsonlSource, Template, metrics, register_task

FILMS = [Template("{{text}} Good or bad? {{options_}}", "{{label}}"),
         Template("Review: {{text}} Verdict: {{options_}}", "{{label}}")]
ECHO = [Template("Repeat: {{text}}", "{{label}}"), Template("Say {{text}} again.", "{{label}}")]
for name, data, options, templates in (("{prefix}_films", "{films}", ["good", "bad"], FILMS),
                                       ("{prefix}_echo", "{echo}", None, ECHO)):
  register_task(
      name=name,
      source=JsonlSource({{"train": data, "validation": data}},
                         fields={{"text": "text", "label": "label"}}),
      templates=templates, options=options, collection="user", metric_fns=[metrics.accuracy],
      cluster="sentiment" if options else "copying",
      styles=["zs_opt", "zs_noopt"] if options else ["zs_noopt"])
builder.register_mixture("{prefix}_train", ["{prefix}_films"])
builder.register_eval_mixture("{prefix}_eval", ["{prefix}_films", "{prefix}_echo"])
'''


@pytest.fixture(scope="module")
def user_tasks(tmp_path_factory):
  """Writes and imports the task file once: a 2-option classification task and a copying
  task; mixtures PREFIX_train (films only) and PREFIX_eval (both)."""
  from flan_tune.tasks import registry

  root = tmp_path_factory.mktemp("user_tasks")
  prefix = "user"  # fixed: renderings (so the trained model) depend on task names
  films = write_jsonl(root / "films.jsonl", [
      {"text": f"film {i} was {'fine' if i % 2 else 'dull'}", "label": "good" if i % 2 else "bad"}
      for i in range(24)])
  echo = write_jsonl(root / "echo.jsonl", [{"text": f"w{i}", "label": f"w{i}"} for i in range(12)])
  path = root / "my_tasks.py"
  path.write_text(USER_TASKS.format(prefix=prefix, films=films, echo=echo))
  registry.import_modules([str(path)])
  return path, prefix


def random_model(seed=0):
  model = network.T5(runs_lib.TINY)
  return model, network.unbox(network.init_variables(model, jax.random.key(seed))["params"])


@pytest.fixture(scope="module")
def evaluated(user_tasks, tmp_path_factory):
  _, prefix = user_tasks
  model, params = random_model()
  evaluator = Evaluator(EvalConfig(mixture_or_task_name=f"{prefix}_eval", batch_size=5,
                                   task_feature_lengths={"inputs": 32, "targets": 8}),
                        EncoderDecoderModel(model), str(tmp_path_factory.mktemp("eval")))
  results = evaluator.evaluate(params, model_name="random", step=0,
                               trained_on=f"{prefix}_train")
  return evaluator, model, params, results


def test_rank_classification_picks_the_most_likely_option(evaluated, user_tasks):
  """Each example's score is 100 exactly when the option with the highest
  log-likelihood (computed here, option by option) is the correct one."""
  evaluator, model, params, results = evaluated
  _, prefix = user_tasks
  task = results.tasks[f"{prefix}_films_zs_opt_rank"]
  assert task.scoring and task.primary_metric == "accuracy" and task.chance == 50.0
  import seqio

  rows = list(seqio.get_mixture_or_task(f"{prefix}_films_zs_opt_rank").get_dataset(
      {"inputs": 32, "targets": 8}, split="validation", shuffle=False).as_numpy_iterator())
  assert len(task.example_scores) == len(rows) // 2 == 24
  for example, pair in enumerate(zip(rows[0::2], rows[1::2])):
    likelihoods = [float(decoding.score(model, params, {
        "encoder_input_tokens": np.pad(r["inputs"], (0, 32 - len(r["inputs"])))[None],
        "decoder_target_tokens": np.pad(r["targets"], (0, 8 - len(r["targets"])))[None]})[0])
        for r in pair]
    correct = [bool(r["is_correct"]) for r in pair]
    assert task.example_scores[example] == (100.0 if correct[int(np.argmax(likelihoods))]
                                            else 0.0), example
  assert np.mean(task.example_scores) == pytest.approx(task.score)


def test_generation_scores_marks_and_files(evaluated, user_tasks):
  evaluator, _, _, results = evaluated
  _, prefix = user_tasks
  films, echo = results.tasks[f"{prefix}_films_zs_opt"], results.tasks[f"{prefix}_echo_zs_noopt"]
  assert not films.held_out and echo.held_out  # trained on films only
  assert films.chance == 50.0 and echo.chance == 0.0
  for task in (films, echo):
    assert len(task.example_scores) == len(set(task.example_ids)) == (24 if task is films else 12)
    assert np.mean(task.example_scores) == pytest.approx(task.score)
  # The films' generation rows offer options; the predictions are the model's own text.
  predictions = [json.loads(line)["prediction"] for line in open(os.path.join(
      evaluator.output_dir, "predictions_0", f"{prefix}_films_zs_opt.jsonl"))]
  expected = 100 * np.mean([p.strip().lower() in ("good", "bad") for p in predictions])
  assert films.metrics["option_share"] == pytest.approx(expected)
  assert "option_share" not in echo.metrics
  loaded = results_lib.load(os.path.join(evaluator.output_dir, "results_0.json"))
  assert loaded.tasks == results.tasks
  with open(os.path.join(evaluator.output_dir, "predictions_0",
                         f"{prefix}_echo_zs_noopt.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  assert len(rows) == 12 and {"input", "target", "prediction"} <= rows[0].keys()


def test_example_ids_do_not_depend_on_the_model(evaluated, user_tasks, tmp_path):
  evaluator, model, _, results = evaluated
  _, other = random_model(seed=1)
  again = evaluator.evaluate(other, model_name="other", step=1)
  for name, task in results.tasks.items():
    assert again.tasks[name].example_ids == task.example_ids
    assert again.tasks[name].held_out  # no training mixture given: everything held out


def test_train_eval_compare_end_to_end(user_tasks, tmp_path, capsys):
  """The user's loop through the CLI: fine-tune a tiny checkpoint on one task (with
  evaluation during training), evaluate the starting checkpoint as the baseline, and
  compare: one row per task, the held-out one marked, files written."""
  path, prefix = user_tasks
  initial = tmp_path / "t5_tiny"
  runs_lib.write_initial_checkpoint(initial)
  lengths = "{'inputs': 32, 'targets': 8}"

  def run(argv):
    gin.clear_config()
    try:
      assert cli.main(argv) == 0, capsys.readouterr().err[-3000:]
    finally:
      gin.clear_config()

  run(["train", "--gin_file=runs/finetune.gin", f"--module={path}",
       f"--gin.INITIAL_CHECKPOINT_PATH='{initial}'", f"--gin.MODEL_DIR='{tmp_path / 'tuned'}'",
       f"--gin.MIXTURE_OR_TASK_NAME='{prefix}_train'", f"--gin.TASK_FEATURE_LENGTHS={lengths}",
       "--gin.TRAIN_STEPS=30", "--gin.BATCH_SIZE=8", "--gin.train.log_every=10",
       "--gin.optimizers.constant_schedule.learning_rate=1e-2",
       "--gin.train.evaluation=@EvalDuringTraining()", "--gin.EvalDuringTraining.every=30",
       f"--gin.EvalConfig.mixture_or_task_name='{prefix}_eval'",
       f"--gin.EvalConfig.task_feature_lengths={lengths}"])
  tuned = tmp_path / "tuned" / "eval" / "results_30.json"
  assert tuned.exists()
  # Both checkpoints through one evaluator, each into its own directory.
  run(["eval", "--gin_file=runs/eval.gin", f"--module={path}",
       f"--gin.CHECKPOINT_PATH={[str(initial), str(tmp_path / 'tuned')]!r}",
       f"--gin.EVAL_OUTPUT_DIR='{tmp_path / 'evals'}'", "--gin.MODEL_NAME=['t5', 'tuned']",
       f"--gin.MIXTURE_OR_TASK_NAME='{prefix}_eval'", f"--gin.TASK_FEATURE_LENGTHS={lengths}"])
  again = results_lib.load(tmp_path / "evals" / "tuned" / "results_30.json")
  assert ({name: t.example_scores for name, t in again.tasks.items()}
          == {name: t.example_scores for name, t in results_lib.load(tuned).tasks.items()})
  capsys.readouterr()
  run(["compare", str(tmp_path / "evals" / "t5" / "results_final.json"), str(tuned),
       "--out", str(tmp_path / "comparison")])
  table = capsys.readouterr().out
  assert f"{prefix}_films_zs_opt_rank" in table and f"{prefix}_echo_zs_noopt" in table
  assert f"* {prefix}_echo_zs_noopt" in table  # held out: never trained on
  assert sorted(os.listdir(tmp_path / "comparison")) == [
      "comparison.csv", "comparison.json", "comparison.md", "comparison.png"]
  tuned_results = results_lib.load(tuned)
  films = tuned_results.tasks[f"{prefix}_films_zs_opt_rank"]
  assert films.score > 60, "30 steps on the films task should beat chance (50)"


def test_several_checkpoints_need_one_name_each(tmp_path):
  from flan_tune.evaluation.evaluate import evaluate

  with pytest.raises(FlanTuneError, match="several checkpoints would be named t5"):
    evaluate([str(tmp_path / "t5")] * 2, str(tmp_path / "out"))
  with pytest.raises(FlanTuneError, match="2 checkpoints need 2 names, got 'a'"):
    evaluate([str(tmp_path / "t5")] * 2, str(tmp_path / "out"), model_name="a")


def task_result(cluster, style, held_out, score, chance=0.0):
  return results_lib.TaskResult(
      family=f"{cluster}_family", cluster=cluster, style=style, scoring=False,
      held_out=held_out, primary_metric="accuracy", chance=chance,
      metrics={"accuracy": score}, example_ids=["a", "b"], example_scores=[score, score])


def test_aggregates_by_cluster_style_and_split():
  results = results_lib.EvalResults(model="m", step=1, split="validation", mixture="x",
                                    checkpoint="", tasks={
      "a": task_result("nli", "zs_opt", True, 60.0, chance=50.0),
      "b": task_result("nli", "zs_noopt", True, 40.0, chance=20.0),
      "c": task_result("qa", "zs_opt", False, 90.0)})
  aggregates = results.aggregates()
  assert aggregates["by_cluster"]["nli"]["score"] == pytest.approx(50.0)
  # normalized: (60-50)/(100-50) = 20, (40-20)/(100-20) = 25, 90 -> mean of the first two
  assert aggregates["by_cluster"]["nli"]["normalized"] == pytest.approx(22.5)
  assert aggregates["by_style"]["zs_opt"]["score"] == pytest.approx(75.0)
  assert aggregates["by_split"]["held_out"]["tasks"] == 2
  assert aggregates["by_split"]["held_in"]["score"] == pytest.approx(90.0)
  assert aggregates["overall"]["normalized"] == pytest.approx((20 + 25 + 90) / 3)


def test_a_transformers_checkpoint_evaluates_like_the_same_flan_tune_model(
    user_tasks, tmp_path, capsys):
  from flan_tune.model import hf

  path, prefix = user_tasks
  config, params = runs_lib.TINY, runs_lib.write_initial_checkpoint(tmp_path / "ours")
  hf.export_hf(config, params, tmp_path / "hf")
  for name in ("ours", "hf"):
    gin.clear_config()
    argv = ["eval", "--gin_file=runs/eval.gin", f"--module={path}",
            f"--gin.CHECKPOINT_PATH='{tmp_path / name}'",
            f"--gin.EVAL_OUTPUT_DIR='{tmp_path / name}_eval'",
            f"--gin.MIXTURE_OR_TASK_NAME='{prefix}_eval'", "--gin.NUM_EXAMPLES=6",
            "--gin.TASK_FEATURE_LENGTHS={'inputs': 32, 'targets': 8}"]
    try:
      assert cli.main(argv) == 0, capsys.readouterr().err[-2000:]
    finally:
      gin.clear_config()
  ours, theirs = (results_lib.load(tmp_path / f"{name}_eval" / "results_final.json")
                  for name in ("ours", "hf"))
  assert ours.model == "ours" and theirs.model == "hf"
  for task, result in ours.tasks.items():
    assert theirs.tasks[task].example_scores == result.example_scores, task
    assert theirs.tasks[task].metrics == pytest.approx(result.metrics), task


_SHARDED_EVAL = """
import json, os, sys
import jax, numpy as np
import flan_tune_tasks  # the offline collection
from flan_tune.evaluation.evaluator import EvalConfig, Evaluator
from flan_tune.model import network
from flan_tune.model.config import T5Config
from flan_tune.runtime.model import EncoderDecoderModel
from flan_tune.runtime.partitioning import MeshConfig

out_dir = sys.argv[1]
config = T5Config(vocab_size=4224, d_model=32, num_encoder_layers=2, num_decoder_layers=2,
                  num_heads=4, d_kv=8, d_ff=64)
model = network.T5(config)
params = network.unbox(network.init_variables(model, jax.random.key(0))["params"])
total = sum(x.nbytes for x in jax.tree.leaves(params))
eval_config = EvalConfig(mixture_or_task_name="flan_offline_coreference_eval", batch_size=8,
                         num_examples=6, task_feature_lengths={"inputs": 64, "targets": 8})
report = {"total_param_bytes": total}
for name, mesh_config, devices in (("one", MeshConfig(data=1), jax.devices()[:1]),
                                   ("data2_model4", MeshConfig(data=2, model=4), None),
                                   ("fsdp", MeshConfig(data=8, rules="fsdp"), None)):
  evaluator = Evaluator(eval_config, EncoderDecoderModel(model), os.path.join(out_dir, name),
                        mesh_config.make_mesh(devices), mesh_config.axis_rules())
  placed = evaluator.sharded.place(params)
  device = jax.devices()[0]  # in every mesh here
  on_device = sum(shard.data.nbytes for leaf in jax.tree.leaves(placed)
                  for shard in leaf.addressable_shards if shard.device == device)
  tokens = np.zeros((8, 64), np.int32)
  compiled = evaluator.sharded.lower_predict(placed, tokens).compile().memory_analysis()
  results = evaluator.evaluate(placed, model_name=name, step=0)
  predictions = {}
  directory = os.path.join(out_dir, name, "predictions_0")
  for file in sorted(os.listdir(directory)):
    with open(os.path.join(directory, file)) as f:
      predictions[file] = [json.loads(line).get("prediction") for line in f]
  report[name] = {"scores": {t: r.example_scores for t, r in results.tasks.items()},
                  "predictions": predictions, "param_bytes_on_device": on_device,
                  "compiled_argument_bytes": compiled.argument_size_in_bytes}
print(json.dumps(report))
"""


def test_sharded_evaluation_matches_one_device(tmp_path):
  """Issue 15: evaluation under data=2 x model=4 and under FSDP gives one device's
  per-example scores and predictions, with a quarter of the params per device."""
  import subprocess
  import sys

  done = subprocess.run([sys.executable, "-c", _SHARDED_EVAL, str(tmp_path)],
                        capture_output=True, text=True, timeout=600,
                        env=runs_lib.device_env(8, TF_CPP_MIN_LOG_LEVEL="3"),
                        cwd=runs_lib.REPO)
  assert done.returncode == 0, done.stderr[-4000:]
  report = json.loads(done.stdout.strip().splitlines()[-1])
  one = report["one"]
  assert one["scores"] and any(one["predictions"].values())
  for name in ("data2_model4", "fsdp"):
    assert report[name]["predictions"] == one["predictions"], name
    assert report[name]["scores"].keys() == one["scores"].keys()
    for task, scores in one["scores"].items():
      np.testing.assert_allclose(report[name]["scores"][task], scores, atol=1e-4,
                                 err_msg=f"{name} {task}")
  total = report["total_param_bytes"]
  assert one["param_bytes_on_device"] == total
  for name in ("data2_model4", "fsdp"):
    assert report[name]["param_bytes_on_device"] <= 0.3 * total, report[name]
    assert report[name]["compiled_argument_bytes"] <= 0.3 * total + 8 * 64 * 4, report[name]
