"""A multi-host job on one machine: two processes joined by `jax.distributed` (gloo CPU
collectives, 4 devices each) train exactly as one process with 8 devices does, and the
job's checkpoint resumes in one process, and a corrupted newest step is set aside by both
processes together (tests/training_runs.py runs the CLI)."""

import glob
import os
import shutil
import time

import numpy as np
import pytest

import training_runs as runs_lib
from training_runs import finish_ok, losses, metrics, start, train_args

pytestmark = pytest.mark.xdist_group("multihost")

STEPS, PAIR_STEPS = 6, 4


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
  """"one": 1 process x 8 devices, STEPS steps, reading the data as 2 shards, as two
  processes do. "two": 2 processes x 4 devices for PAIR_STEPS steps, then resumed in 1
  process to STEPS. Global batch 8 over a data=8 mesh in both."""
  root = tmp_path_factory.mktemp("multihost")
  initial = root / "initial"
  runs_lib.write_initial_checkpoint(initial)
  one, two = str(root / "one"), str(root / "two")
  in_one_process = "--gin.TrainInput.num_shards=2"
  port = runs_lib.free_port()
  deadline = time.monotonic() + runs_lib.TIMEOUT_S
  reference = start(train_args(one, STEPS, initial, in_one_process, batch_size=8),
                    f"{one}.log", devices=8)
  pair = [start(train_args(two, PAIR_STEPS, initial, f"--coordinator_address=localhost:{port}",
                           "--num_processes=2", f"--process_id={index}", batch_size=8),
                f"{two}.{index}.log", devices=4) for index in (0, 1)]
  outputs = [finish_ok(process, deadline) for process in pair]
  finish_ok(reference, deadline)
  # A copy whose newest step is then corrupted, resumed by two processes again.
  corrupt = str(root / "corrupt")
  shutil.copytree(two, corrupt)
  resumed = finish_ok(start(train_args(two, STEPS, initial, in_one_process, batch_size=8),
                            f"{two}.resumed.log", devices=8))
  for data in glob.glob(f"{corrupt}/checkpoints/{PAIR_STEPS}/state/ocdbt.process_*/d/*"):
    with open(data, "r+b") as f:
      f.truncate(os.path.getsize(data) // 2)
  port = runs_lib.free_port()
  pair = [start(train_args(corrupt, STEPS, initial, f"--coordinator_address=localhost:{port}",
                           "--num_processes=2", f"--process_id={index}", batch_size=8),
                f"{corrupt}.{index}.log", devices=4) for index in (0, 1)]
  deadline = time.monotonic() + runs_lib.TIMEOUT_S
  corrupt_outputs = [finish_ok(process, deadline) for process in pair]
  return {"one": one, "two": two, "outputs": outputs, "resumed": resumed,
          "corrupt": corrupt, "corrupt_outputs": corrupt_outputs}


def test_two_processes_give_the_losses_of_one(dirs):
  rows = metrics(dirs["two"])
  assert [row["step"] for row in rows] == list(range(1, STEPS + 1))  # process 0 logs, once
  np.testing.assert_allclose(losses(dirs["two"])[:PAIR_STEPS],
                             losses(dirs["one"])[:PAIR_STEPS], rtol=1e-6, atol=1e-6)
  process_0, process_1 = dirs["outputs"]
  assert f"step {PAIR_STEPS}/{PAIR_STEPS}" in process_0
  assert "steps/s" not in process_1


def test_a_multi_process_checkpoint_resumes_in_one_process(dirs):
  """Same mesh shape, one process instead of two: the state restores onto the new
  devices and the data position carries over (num_shards fixes the batch stream)."""
  assert f"step {PAIR_STEPS + 1}/{STEPS}" in dirs["resumed"]
  np.testing.assert_allclose(losses(dirs["two"]), losses(dirs["one"]), rtol=1e-6, atol=1e-6)


def test_both_processes_set_aside_a_corrupted_newest_step_and_resume_from_the_one_before(dirs):
  process_0, process_1 = dirs["corrupt_outputs"]
  said = [line for line in process_0.splitlines() if "cannot be read" in line]
  assert len(said) == 1 and f"checkpoint step {PAIR_STEPS} cannot be read" in said[0]
  assert "Traceback" not in process_0 + process_1
  assert os.path.isdir(f"{dirs['corrupt']}/checkpoints/{PAIR_STEPS}.unreadable-0")
  steps = [row["step"] for row in metrics(dirs["corrupt"])]
  assert steps[-(STEPS - 2):] == list(range(3, STEPS + 1))  # again from step 2
  np.testing.assert_allclose(losses(dirs["corrupt"])[-(STEPS - 2):], losses(dirs["one"])[2:],
                             rtol=1e-6, atol=1e-6)
