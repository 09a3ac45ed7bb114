"""The training loop end to end, through `flan-tune train` in subprocesses (tests/
training_runs.py): metrics and checkpoints, SIGTERM, SIGKILL and exact resume, initial
checkpoints of every kind, loss falling on flan_offline, and launch errors."""

import os
import signal
import time

import gin
import jax
import psutil
import numpy as np
import pytest
import tensorflow as tf

import flan_tune_tasks.offline  # noqa: F401  (registers the offline mixtures)
import training_runs as runs_lib
from flan_tune import cli
from flan_tune.model import hf, network
from flan_tune.runtime import checkpoints
from flan_tune.training import optimizers, reporting
from flan_tune.training.input_pipeline import TrainInput
from flan_tune.training.train import train
from training_runs import (TINY, checkpoint_steps, finish, finish_ok, losses, metrics, start,
                           train_args)

pytestmark = pytest.mark.xdist_group("train_runs")

STEPS = 12


@pytest.fixture(scope="module")
def initial(tmp_path_factory):
  directory = tmp_path_factory.mktemp("initial") / "tiny"
  return directory, runs_lib.write_initial_checkpoint(directory)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, initial):
  """Side by side, to keep the suite short: run "a" (STEPS steps, uninterrupted); run
  "term" (10,000 steps), sent SIGTERM once its first step is logged; and run "kill"
  (10,000 steps), killed with SIGKILL at step 5 or later, after its first checkpoints."""
  root = tmp_path_factory.mktemp("runs")
  dirs = {name: str(root / name) for name in ("a", "term", "kill")}
  targets = {"a": STEPS, "term": 10_000, "kill": 10_000}
  processes = {name: start(train_args(dirs[name], targets[name], initial[0]),
                           f"{dirs[name]}.log") for name in dirs}
  deadline = time.monotonic() + runs_lib.TIMEOUT_S
  runs_lib.wait_for_step(processes["term"], dirs["term"], 1, deadline)
  processes["term"].send_signal(signal.SIGTERM)
  runs_lib.wait_for_step(processes["kill"], dirs["kill"], 5, deadline)
  workers = psutil.Process(processes["kill"].pid).children(recursive=True)
  processes["kill"].send_signal(signal.SIGKILL)
  results = {name: finish(process, deadline) for name, process in processes.items()}
  return dirs, results, workers


def test_run_writes_metrics_checkpoints_and_tensorboard(runs):
  dirs, results, _ = runs
  code, output = results["a"]
  assert code == 0, output[-3000:]
  rows = metrics(dirs["a"])
  assert [row["step"] for row in rows] == list(range(1, STEPS + 1))
  assert all(row["loss"] > 0 and row["learning_rate"] == pytest.approx(5e-4) for row in rows)
  assert {"accuracy", "grad_norm", "z_loss", "num_tokens"} <= rows[0].keys()
  assert checkpoint_steps(dirs["a"])[-1] == STEPS
  assert set(checkpoint_steps(dirs["a"])) <= set(range(2, STEPS + 1, 2))
  assert f"step {STEPS}/{STEPS} [####################]" in output
  assert "steps/s" in output and "target tokens/s" in output and "ETA" in output
  scalars = tensorboard_scalars(os.path.join(dirs["a"], reporting.TENSORBOARD_DIR))
  assert sorted(scalars["loss"]) == list(range(1, STEPS + 1))
  assert scalars["loss"][3] == pytest.approx(rows[2]["loss"], rel=1e-6)
  assert {"accuracy", "learning_rate", "grad_norm", "steps_per_second",
          "target_tokens_per_second"} <= scalars.keys()


def tensorboard_scalars(directory):
  """{tag: {step: value}} from the event files in `directory`."""
  from tensorboard.backend.event_processing import event_accumulator

  accumulator = event_accumulator.EventAccumulator(
      directory, size_guidance={event_accumulator.TENSORS: 0})
  accumulator.Reload()
  return {tag: {event.step: float(tf.make_ndarray(event.tensor_proto))
                for event in accumulator.Tensors(tag)}
          for tag in accumulator.Tags()["tensors"]}


def test_sigterm_saves_and_exits_cleanly(runs):
  dirs, results, _ = runs
  code, output = results["term"]
  assert code == 0, output[-3000:]
  stopped = metrics(dirs["term"])[-1]["step"]
  assert stopped < 10_000
  assert checkpoint_steps(dirs["term"])[-1] == stopped
  assert f"stopping at step {stopped} on SIGTERM" in output


@pytest.mark.parametrize("name", ["term", "kill"])
def test_resume_continues_exactly(runs, initial, name):
  """A run stopped by SIGTERM, or killed by SIGKILL at step >= 5 (so after a checkpoint
  and with logged steps past it), resumes from its last checkpoint (state and data
  position); the log then holds each step once and every loss is run a's."""
  dirs, results, _ = runs
  if name == "kill":
    assert results["kill"][0] == -signal.SIGKILL
  stopped = checkpoint_steps(dirs[name])[-1]
  assert stopped < STEPS, "the signal came too late to test resuming"
  output = finish_ok(start(train_args(dirs[name], STEPS, initial[0]), f"{dirs[name]}.2.log"))
  assert f"step {stopped + 1}/{STEPS}" in output
  assert [row["step"] for row in metrics(dirs[name])] == list(range(1, STEPS + 1))
  np.testing.assert_allclose(losses(dirs[name]), losses(dirs["a"]), rtol=0, atol=1e-6)
  assert checkpoint_steps(dirs[name])[-1] == STEPS


def test_input_workers_exit_when_the_trainer_is_killed(runs):
  """A SIGKILLed trainer cannot stop its input workers; they notice and exit."""
  *_, workers = runs
  assert workers, "the killed run had no input worker processes"
  _, alive = psutil.wait_procs(workers, timeout=10)
  assert not alive, alive


@pytest.mark.xdist_group("flan_offline")  # a group of its own, beside the runs above
def test_loss_falls_on_flan_offline(initial, tmp_path):
  """The whole offline mixture (177 members), shuffled, through the Grain input."""
  model_dir = tmp_path / "flan"
  args = train_args(model_dir, 60, initial[0],
                    "--gin.MIXTURE_OR_TASK_NAME='flan_offline'",
                    "--gin.TASK_FEATURE_LENGTHS={'inputs': 128, 'targets': 32}",
                    "--gin.optimizers.constant_schedule.learning_rate=0.01",
                    "--gin.train.log_every=20",
                    batch_size=16)
  finish_ok(start(args, f"{model_dir}.log"))
  values = losses(model_dir)
  assert len(values) == 60
  assert np.mean(values[-10:]) < np.mean(values[:10]) - 1.5, values


# --- initial checkpoints, in process ---------------------------------------------------

@pytest.fixture
def clean_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def train_from(model_dir, initial_checkpoint_path, steps=0):
  return train(str(model_dir), train_steps=steps, initial_checkpoint_path=str(
      initial_checkpoint_path), learning_rate_schedule=optimizers.constant_schedule(1e-3),
      train_input=TrainInput(mixture_or_task_name=runs_lib.MIXTURE, batch_size=2,
                             task_feature_lengths={"inputs": 32, "targets": 8}))


def assert_params_equal(params, expected):
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(expected), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_starts_from_a_flan_tune_model_or_a_transformers_directory(initial, tmp_path,
                                                                   clean_gin):
  directory, params = initial
  hf.export_hf(TINY, params, tmp_path / "hf")
  for name, path in (("flan_tune", directory), ("hf", tmp_path / "hf")):
    state = train_from(tmp_path / f"run_{name}", path)
    assert int(state.step) == 0
    assert_params_equal(state.params, params)
    assert runs_lib.read_json(tmp_path / f"run_{name}" / "config.json") == runs_lib.read_json(
        directory / "config.json")


def test_starts_from_another_runs_checkpoint_scanned(runs, tmp_path, clean_gin):
  """A training run's MODEL_DIR gives its latest params (not its optimizer state), and
  an unscanned checkpoint trains scanned."""
  dirs, *_ = runs
  gin.parse_config("T5Config.scan_layers = True")
  state = train_from(tmp_path / "next", dirs["a"])
  assert "layers" in state.params["encoder"]
  unscanned = network.unstack_layers(state.params)
  step_dir = checkpoints.complete_step_directory(dirs["a"])
  assert step_dir.name == str(STEPS)
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), unscanned)
  assert_params_equal(unscanned, checkpoints.restore_params(step_dir, abstract))


# --- launch errors: each exits 2 before any work, naming what is wrong -------------------

def cli_error(argv, capsys):
  gin.clear_config()
  try:
    assert cli.main(argv) == 2
  finally:
    gin.clear_config()
  return capsys.readouterr().err


def test_mistyped_binding_is_a_clear_error(tmp_path, capsys, initial):
  argv = train_args(tmp_path / "run", 3, initial[0], "--gin.train.trian_steps=3")[3:]
  assert "--gin.train.trian_steps=3" in cli_error(argv, capsys)
  assert not (tmp_path / "run").exists()


def test_unknown_mixture_is_a_clear_error(tmp_path, capsys, initial):
  argv = train_args(tmp_path / "run", 3, initial[0],
                    "--gin.MIXTURE_OR_TASK_NAME='no_such_mixture'")[3:]
  err = cli_error(argv, capsys)
  assert "no_such_mixture" in err and "not a registered" in err
  assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flags, message", [
    (["--gin.T5Config.d_model=64"],
     "T5Config.d_model=64 in gin but 32 in INITIAL_CHECKPOINT_PATH"),
    (["--gin.INITIAL_CHECKPOINT_PATH='/no/such/dir'"], "/no/such/dir: no such file"),
    (["--gin.TASK_FEATURE_LENGTHS={'inputs': 64}"], "exactly the features 'inputs' and"),
    (["--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 0}"], "['targets']=0 must be"),
    (["--gin.BATCH_SIZE=3", "--gin.TrainInput.num_shards=2"],
     "TrainInput.batch_size=3 must be a positive multiple of the 2 data shards"),
    (["--gin.MeshConfig.model=2"], "MeshConfig.model=2 does not divide 1 devices"),
    (["--num_processes=2"], "--coordinator_address, --num_processes and --process_id go"),
    (["--gin.train.evaluation=@EvalDuringTraining()", "--gin.EvalDuringTraining.every=5",
      "--gin.EvalConfig.mixture_or_task_name='no_such_eval'"],
     "EvalConfig.mixture_or_task_name='no_such_eval' is not a registered"),
])
def test_bad_launch_is_a_clear_error(tmp_path, capsys, initial, flags, message):
  argv = train_args(tmp_path / "run", 3, initial[0], *flags)[3:]
  assert message in cli_error(argv, capsys)
  assert not (tmp_path / "run").exists()


def test_vocabulary_larger_than_the_model_is_a_clear_error(tmp_path, capsys):
  argv = ["train", "--gin_file=models/t5_1_1_tiny.gin", "--gin_file=runs/pretrain.gin",
          f"--gin.MODEL_DIR='{tmp_path / 'run'}'"]
  err = cli_error(argv, capsys)
  assert "vocabulary has 4100 ids but the model's T5Config.vocab_size is 256" in err


def test_resuming_with_another_architecture_is_a_clear_error(runs, capsys):
  dirs, *_ = runs
  argv = ["train", "--gin_file=models/t5_1_1_tiny.gin", "--gin_file=runs/pretrain.gin",
          "--gin.T5Config.vocab_size=4224", f"--gin.MODEL_DIR='{dirs['a']}'"]
  argv.append("--gin.T5Config.d_ff=64")
  err = cli_error(argv, capsys)
  assert f"T5Config.d_ff=64 in gin but 48 in {dirs['a']}/config.json (this run's model)" in err
  assert "num_heads" not in err  # bindings that match are fine


# --- user task files and vocabularies ---------------------------------------------------

USER_TASKS = '''
from flan_tune.tasks import JsonlSource, Template, register_task

register_task(
    name="{name}",
    source=JsonlSource({{"train": "{data}"}}, fields={{"text": "text", "label": "label"}}),
    templates=[Template("{{text}} Is it good? {{options_}}", "{{label}}")],
    options=["yes", "no"], cluster="sentiment", collection="user")
'''


@pytest.fixture
def user_task_file(tmp_path, unique):
  """A user's task file, as README's "Registering a task" writes one (byte vocabulary)."""
  from conftest import write_jsonl

  data = write_jsonl(tmp_path / "train.jsonl", [
      {"text": f"film {i} was {'great' if i % 2 else 'dull'}", "label": "yes" if i % 2 else "no"}
      for i in range(40)])
  path = tmp_path / "my_tasks.py"
  path.write_text(USER_TASKS.format(name=f"{unique}_films", data=data))
  return path, f"{unique}_films_zs_opt"


def test_a_task_file_named_in_gin_registers_and_trains(user_task_file, initial, tmp_path,
                                                       clean_gin):
  path, task = user_task_file
  state = train(str(tmp_path / "run"), train_steps=2, initial_checkpoint_path=str(initial[0]),
                learning_rate_schedule=optimizers.constant_schedule(1e-3),
                train_input=TrainInput(mixture_or_task_name=task, batch_size=2,
                                       mixture_or_task_module=str(path),
                                       task_feature_lengths={"inputs": 64, "targets": 8}))
  assert int(state.step) == 2
  assert [row["step"] for row in metrics(tmp_path / "run")] == [1, 2]


def test_a_checkpoint_vocabulary_the_task_does_not_use_is_a_clear_error(
    user_task_file, initial, tmp_path, capsys):
  """The checkpoint ships the offline SentencePiece model: the offline tasks pass the
  check, a byte-level user task is refused before any work."""
  from flan_tune.model import checkpoint

  path, task = user_task_file
  with_vocabulary = tmp_path / "with_vocabulary"
  checkpoint.save_model(with_vocabulary, TINY, initial[1],
                        vocabulary_file=flan_tune_tasks.offline.vocabulary.MODEL_PATH)
  offline = train_args(tmp_path / "offline", 0, with_vocabulary)[3:]
  gin.clear_config()
  assert cli.main(offline) == 0
  user = train_args(tmp_path / "user", 3, with_vocabulary,
                    f"--gin.MIXTURE_OR_TASK_NAME='{task}'",
                    f"--gin.MIXTURE_OR_TASK_MODULE='{path}'")[3:]
  err = cli_error(user, capsys)
  assert "tokenizes with ByteVocabulary, not with" in err and "spiece.model" in err
  assert not (tmp_path / "user").exists()
