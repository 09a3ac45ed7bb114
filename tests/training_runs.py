"""`flan-tune train` in subprocesses, as users run it, for the training-loop tests.

Runs fine-tune a tiny T5 (t5_1_1_tiny.gin's shape with the offline vocabulary) from an
initial checkpoint the tests write, on a 4-task mixture at lengths 64/16. Every
subprocess has a deadline, so a loop or exit that hangs fails instead of blocking, and
its output goes to a file, so no pipe can fill up."""

import json
import os
import socket
import subprocess
import sys
import time

import jax
import pytest

from flan_tune.model import checkpoint, network
from flan_tune.model.config import T5Config
from flan_tune.runtime import checkpoints
from flan_tune.training import reporting

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT_S = 180
MIXTURE = "flan_offline_translation_eval"
TINY = T5Config(vocab_size=4224, d_model=32, num_encoder_layers=2, num_decoder_layers=2,
                num_heads=3, d_kv=10, d_ff=48)


def write_initial_checkpoint(directory, config=TINY, seed=0):
  """A random tiny model saved as a flan-tune model directory; returns its params."""
  params = network.unbox(network.init_variables(network.T5(config),
                                                jax.random.key(seed))["params"])
  checkpoint.save_model(directory, config, params)
  return params


def train_args(model_dir, steps, initial_checkpoint, *extra, batch_size=4):
  return [sys.executable, "-m", "flan_tune.cli", "train", "--gin_file=runs/finetune.gin",
          f"--gin.INITIAL_CHECKPOINT_PATH='{initial_checkpoint}'",
          f"--gin.MODEL_DIR='{model_dir}'", f"--gin.TRAIN_STEPS={steps}",
          f"--gin.BATCH_SIZE={batch_size}", f"--gin.MIXTURE_OR_TASK_NAME='{MIXTURE}'",
          "--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 16}",
          "--gin.CheckpointConfig.save_interval_steps=2", "--gin.train.log_every=1", *extra]


def device_env(devices, **extra):
  """The environment of a subprocess with `devices` CPU devices (XLA_FLAGS only takes
  effect before jax initialises), keeping the suite's other XLA flags."""
  flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}"
  return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "JAX_PLATFORMS": "cpu",
          "XLA_FLAGS": flags.strip(), **extra}


def start(args, log_path, devices=1):
  """A subprocess with `devices` CPU devices, its output in log_path."""
  log = open(log_path, "w+")
  process = subprocess.Popen(args, cwd=REPO, env=device_env(devices), stdout=log,
                             stderr=subprocess.STDOUT, text=True)
  process.log = log
  return process


def output_of(process):
  process.log.seek(0)
  return process.log.read()


def finish(process, deadline=None):
  """(exit code, output), killing the process and failing the test past the deadline."""
  deadline = deadline or time.monotonic() + TIMEOUT_S
  try:
    process.wait(timeout=max(deadline - time.monotonic(), 1))
  except subprocess.TimeoutExpired:
    process.kill()
    process.wait()
    pytest.fail(f"training did not exit in time:\n{output_of(process)[-3000:]}")
  return process.returncode, output_of(process)


def finish_ok(process, deadline=None):
  code, output = finish(process, deadline)
  assert code == 0, output[-3000:]
  return output


def metrics(model_dir):
  return reporting.read_metrics(str(model_dir))


def losses(model_dir):
  return [row["loss"] for row in metrics(model_dir)]


def logged_steps(model_dir):
  rows = metrics(model_dir)
  return rows[-1]["step"] if rows else 0


def checkpoint_steps(model_dir):
  directory = os.path.join(model_dir, "checkpoints")
  return sorted(int(name) for name in os.listdir(directory) if name.isdigit()
                and os.path.exists(os.path.join(directory, name, checkpoints.COMMIT_MARKER)))


def wait_for_step(process, model_dir, step, deadline):
  """Polls the metrics log until `step` is logged (or the process ends)."""
  while process.poll() is None and logged_steps(model_dir) < step:
    if time.monotonic() > deadline:
      pytest.fail(f"step {step} not reached in time:\n{output_of(process)[-3000:]}")
    time.sleep(0.02)


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def read_json(path):
  with open(path) as f:
    return json.load(f)
