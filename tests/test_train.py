"""The training loop end to end, through the CLI in subprocesses (as users run it).

Runs are tiny (t5_1_1_tiny.gin with the offline vocabulary, batch 4, lengths 64/16) and
every subprocess has a timeout, so a loop or exit that hangs fails instead of blocking."""

import json
import os
import signal
import subprocess
import sys
import time

import gin
import pytest

from flan_tune import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT_S = 120


def train_args(model_dir, steps, *extra):
  return [sys.executable, "-m", "flan_tune.cli", "train",
          "--gin_file=models/t5_1_1_tiny.gin", "--gin_file=runs/finetune.gin",
          "--gin.T5Config.vocab_size=4224", f"--gin.MODEL_DIR='{model_dir}'",
          f"--gin.TRAIN_STEPS={steps}", "--gin.BATCH_SIZE=4",
          "--gin.MIXTURE_OR_TASK_NAME='flan_offline_translation_eval'",
          "--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 16}",
          "--gin.CheckpointConfig.save_interval_steps=2", "--gin.train.log_every=1", *extra]


def start(model_dir, steps, *extra):
  """The CLI in a subprocess; its output goes to a file, so no pipe can fill up."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", JAX_PLATFORMS="cpu")
  log = open(f"{model_dir}.log", "w+")
  process = subprocess.Popen(train_args(model_dir, steps, *extra), cwd=REPO, env=env,
                             stdout=log, stderr=subprocess.STDOUT, text=True)
  process.log = log
  return process


def output_of(process):
  process.log.seek(0)
  return process.log.read()


def finish(process, deadline=None):
  deadline = deadline or time.monotonic() + TIMEOUT_S
  try:
    process.wait(timeout=max(deadline - time.monotonic(), 1))
  except subprocess.TimeoutExpired:
    process.kill()
    process.wait()
    pytest.fail(f"training did not exit within {TIMEOUT_S}s:\n{output_of(process)[-3000:]}")
  return process.returncode, output_of(process)


def metrics(model_dir):
  with open(os.path.join(model_dir, "train_metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


def checkpoint_steps(model_dir):
  directory = os.path.join(model_dir, "checkpoints")
  return sorted(int(name) for name in os.listdir(directory) if name.isdigit())


def has_metrics(model_dir):
  path = os.path.join(model_dir, "train_metrics.jsonl")
  return os.path.exists(path) and os.path.getsize(path) > 0


STEPS = 10


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """Side by side, to keep the suite short: run A (STEPS steps, uninterrupted) and run B
  (10,000 steps), which gets SIGTERM once its first step is logged."""
  root = tmp_path_factory.mktemp("runs")
  dirs = {name: str(root / name) for name in "ab"}
  processes = {"a": start(dirs["a"], STEPS), "b": start(dirs["b"], 10_000)}
  deadline = time.monotonic() + TIMEOUT_S
  while processes["b"].poll() is None and not has_metrics(dirs["b"]):
    if time.monotonic() > deadline:
      break
    time.sleep(0.05)
  processes["b"].send_signal(signal.SIGTERM)
  results = {name: finish(process, deadline) for name, process in processes.items()}
  return dirs, results


def test_run_writes_metrics_and_checkpoints(runs):
  dirs, results = runs
  code, output = results["a"]
  assert code == 0, output[-3000:]
  rows = metrics(dirs["a"])
  assert [row["step"] for row in rows] == list(range(1, STEPS + 1))
  assert all(row["loss"] > 0 and row["learning_rate"] == pytest.approx(1e-3) for row in rows)
  assert checkpoint_steps(dirs["a"])[-1] == STEPS
  assert set(checkpoint_steps(dirs["a"])) <= set(range(2, STEPS + 1, 2))
  assert f"step {STEPS}:" in output and "steps/s" in output


def test_sigterm_saves_and_exits_cleanly(runs):
  dirs, results = runs
  code, output = results["b"]
  assert code == 0, output[-3000:]
  stopped = metrics(dirs["b"])[-1]["step"]
  assert stopped < 10_000
  assert checkpoint_steps(dirs["b"])[-1] == stopped
  assert f"stopping at step {stopped} on SIGTERM" in output


def test_resume_continues_exactly(runs):
  """Run B, stopped by SIGTERM at some step k < STEPS, resumes there (state and data
  position) and its remaining losses are run A's."""
  dirs, _ = runs
  stopped = checkpoint_steps(dirs["b"])[-1]
  assert stopped < STEPS, "SIGTERM came too late to test resuming"
  code, output = finish(start(dirs["b"], STEPS))
  assert code == 0, output[-3000:]
  resumed = metrics(dirs["b"])
  assert [row["step"] for row in resumed] == list(range(1, STEPS + 1))
  for a, b in zip(metrics(dirs["a"]), resumed):
    assert b["loss"] == pytest.approx(a["loss"], abs=1e-6), a["step"]
  assert checkpoint_steps(dirs["b"])[-1] == STEPS


@pytest.fixture
def clean_gin():
  yield
  gin.clear_config()


def test_mistyped_binding_is_a_clear_error(tmp_path, capsys, clean_gin):
  argv = train_args(tmp_path / "run", 3, "--gin.train.trian_steps=3")[3:]
  assert cli.main(argv) == 2
  assert "--gin.train.trian_steps=3" in capsys.readouterr().err
  assert not (tmp_path / "run").exists()


def test_unknown_mixture_is_a_clear_error(tmp_path, capsys, clean_gin):
  argv = train_args(tmp_path / "run", 3, "--gin.MIXTURE_OR_TASK_NAME='no_such_mixture'")[3:]
  assert cli.main(argv) == 2
  err = capsys.readouterr().err
  assert "no_such_mixture" in err and "not a registered" in err
  assert not (tmp_path / "run" / "checkpoints").exists()
