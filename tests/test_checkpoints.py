"""Checkpoints (flan_tune.runtime.checkpoints): kept steps, resharding, torn saves.

The sharded checks run in subprocesses with 8 CPU devices (XLA_FLAGS only takes effect
before jax initialises); they print JSON and the assertions live here."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from flan_tune.errors import CheckpointError
from flan_tune.runtime.checkpoints import CheckpointConfig
from training_runs import device_env

_PRELUDE = """
  import json, os, sys
  import jax, numpy as np
  from jax.sharding import NamedSharding, PartitionSpec as P
  from flan_tune.runtime.checkpoints import Checkpointer, CheckpointConfig, abstract_like
  model_dir = sys.argv[1]
"""

_SAVE_AND_RESTORE = _PRELUDE + """
  mesh = jax.make_mesh((8,), ("data",))
  rows = NamedSharding(mesh, P("data"))
  state = {"params": {"w": jax.device_put(np.arange(128.0, dtype=np.float32).reshape(16, 8),
                                          rows),
                      "b": jax.device_put(np.arange(8, dtype=np.int32), rows)},
           "step": jax.device_put(np.int32(5), NamedSharding(mesh, P()))}
  out = {"saved": {}}
  ck = Checkpointer(model_dir, CheckpointConfig(save_interval_steps=2, max_to_keep=2))
  for step in range(1, 6):
    out["saved"][step] = ck.save(step, state, {"batches_consumed": step})
  out["forced"] = ck.save(5, state, {"batches_consumed": 5}, force=True)
  ck.wait()
  out["steps"] = ck.all_steps()

  # Simulated crashes mid-save of step 6: Orbax's unrenamed temporary directory, and a
  # step directory whose commit marker was never written.
  ckdir = os.path.join(model_dir, "checkpoints")
  os.makedirs(os.path.join(ckdir, "6.orbax-checkpoint-tmp-1700000000", "state"))
  os.makedirs(os.path.join(ckdir, "7", "state"))
  ck.close()

  ck = Checkpointer(model_dir, CheckpointConfig(save_interval_steps=2, max_to_keep=2))
  out["latest_after_torn"] = ck.latest_step()
  out["dir_after_torn"] = sorted(os.listdir(ckdir))
  mesh2 = jax.make_mesh((4, 2), ("data", "model"))
  target = {"params": {"w": NamedSharding(mesh2, P("data", "model")),
                       "b": NamedSharding(mesh2, P("model"))},
            "step": NamedSharding(mesh2, P())}
  restored, data_state = ck.restore(abstract_like(state, target))
  out["data_state"] = data_state
  leaves = jax.tree_util.tree_leaves_with_path(restored)
  out["equal"] = all(np.array_equal(np.asarray(a), np.asarray(b))
                     for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(state)))
  out["specs"] = {jax.tree_util.keystr(p): str(x.sharding.spec) for p, x in leaves}
  out["meshes"] = sorted({str(dict(x.sharding.mesh.shape)) for _, x in leaves})
  out["shard_shape"] = list(restored["params"]["w"].addressable_shards[0].data.shape)
  same_mesh, _ = ck.restore(abstract_like(state, jax.tree.map(lambda x: x.sharding, state)),
                            step=4)
  out["step4_equal"] = bool(np.array_equal(same_mesh["params"]["w"], state["params"]["w"]))
  ck.close()
  print(json.dumps(out))
"""

# Starts an async save of a large state and dies before it can commit.
_KILLED_MID_SAVE = _PRELUDE + """
  ck = Checkpointer(model_dir, CheckpointConfig(save_interval_steps=1, max_to_keep=3))
  small = {"w": jax.numpy.ones((8, 8))}
  ck.save(1, small, {"batches_consumed": 1})
  ck.wait()
  big = {"w": jax.numpy.ones((8, 8)),
         "x": jax.device_put(np.ones((64, 1024, 1024), np.float32),
                             NamedSharding(jax.make_mesh((8,), ("data",)), P("data")))}
  ck.save(2, big, {"batches_consumed": 2})
  print(json.dumps({"pending": os.listdir(os.path.join(model_dir, "checkpoints"))}),
        flush=True)
  os._exit(0)
"""

_LATEST = _PRELUDE + """
  ck = Checkpointer(model_dir, CheckpointConfig(save_interval_steps=1, max_to_keep=3))
  restored, data = ck.restore(abstract_like({"w": jax.numpy.ones((8, 8))},
                                            {"w": NamedSharding(jax.make_mesh((8,), ("d",)),
                                                                P())}))
  print(json.dumps({"latest": ck.latest_step(), "data": data,
                    "w": float(np.asarray(restored["w"]).sum())}))
  ck.close()
"""


def run_script(script, model_dir):
  proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script), str(model_dir)],
                        capture_output=True, text=True, timeout=300,
                        env=device_env(8, TF_CPP_MIN_LOG_LEVEL="3"))
  assert proc.returncode == 0, proc.stderr[-4000:]
  return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
  return run_script(_SAVE_AND_RESTORE, tmp_path_factory.mktemp("ckpt"))


def test_interval_force_and_max_to_keep(saved):
  # Orbax always saves the first step; then every second step; the forced 5 too.
  assert saved["saved"] == {"1": True, "2": True, "3": False, "4": True, "5": False}
  assert saved["forced"] is True
  assert saved["steps"] == [4, 5]


def test_restore_latest_onto_another_mesh(saved):
  assert saved["equal"] and saved["step4_equal"]
  assert saved["data_state"] == {"batches_consumed": 5}
  assert saved["meshes"] == ["{'data': 4, 'model': 2}"]
  assert saved["specs"]["['params']['w']"] == "P('data', 'model')"
  assert saved["specs"]["['params']['b']"] == "P('model',)"
  assert saved["shard_shape"] == [4, 4]


def test_torn_checkpoints_are_never_latest(saved):
  assert saved["latest_after_torn"] == 5
  assert "7.incomplete-0" in saved["dir_after_torn"]


def test_save_killed_before_commit_keeps_previous_step(tmp_path):
  pending = run_script(_KILLED_MID_SAVE, tmp_path)["pending"]
  assert any(name.startswith("2.orbax-checkpoint-tmp") for name in pending), pending
  latest = run_script(_LATEST, tmp_path)
  assert latest == {"latest": 1, "data": {"batches_consumed": 1}, "w": 64.0}, pending


def test_config_validation():
  with pytest.raises(CheckpointError, match="save_interval_steps=0"):
    CheckpointConfig(save_interval_steps=0)
  with pytest.raises(CheckpointError, match="max_to_keep=0"):
    CheckpointConfig(max_to_keep=0)


def test_a_relative_model_dir_saves_and_restores(tmp_path, monkeypatch):
  """Orbax refuses relative local paths, and only when it writes; `make demo` passes
  runs/demo/..., so the checkpointer makes the path absolute."""
  import jax.numpy as jnp

  from flan_tune.runtime.checkpoints import Checkpointer

  monkeypatch.chdir(tmp_path)
  state = {"w": jnp.arange(4.0)}
  with Checkpointer("runs/relative", CheckpointConfig(async_save=False)) as checkpointer:
    assert checkpointer.save(1, state, {"batches_consumed": 1}, force=True)
    checkpointer.wait()
    restored, data_state = checkpointer.restore({"w": jax_struct(state["w"])})
  assert (tmp_path / "runs" / "relative" / "checkpoints" / "1").is_dir()
  assert data_state["batches_consumed"] == 1
  assert list(restored["w"]) == [0.0, 1.0, 2.0, 3.0]


def jax_struct(x):
  import jax

  return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)


def _truncate_a_data_file(step_directory, every=False):
  """Cuts the largest of a committed step's array files (or `every` one) in half, as a
  failing disk would."""
  data = os.path.join(step_directory, "state", "ocdbt.process_0", "d")
  files = [os.path.join(data, name) for name in os.listdir(data)]
  for victim in files if every else [max(files, key=os.path.getsize)]:
    with open(victim, "r+b") as f:
      f.truncate(os.path.getsize(victim) // 2)


def test_a_corrupted_newest_checkpoint_is_set_aside_and_training_resumes(tmp_path):
  """Issue 15: truncating a file of the newest committed step and rerunning the same
  `flan-tune train` command resumes from the step before, saying so in one line; eval
  given the run does the same; with no readable step left, exit code 2 and one error."""
  import jax

  import training_runs as runs_lib
  from flan_tune.model import network
  from flan_tune.runtime import model_setup, partitioning

  initial, run = tmp_path / "initial", tmp_path / "run"
  runs_lib.write_initial_checkpoint(initial)
  runs_lib.finish_ok(runs_lib.start(runs_lib.train_args(run, 4, initial), tmp_path / "1.log"))
  assert runs_lib.checkpoint_steps(run) == [1, 2, 4]
  _truncate_a_data_file(run / "checkpoints" / "4")

  output = runs_lib.finish_ok(runs_lib.start(runs_lib.train_args(run, 6, initial),
                                             tmp_path / "2.log"))
  said = [line for line in output.splitlines() if "cannot be read" in line]
  assert len(said) == 1 and "checkpoint step 4 cannot be read" in said[0], output[-3000:]
  assert "OUT_OF_RANGE" in said[0] and "4.unreadable-0" in said[0]
  assert "Traceback" not in output and "Event loop is closed" not in output
  assert runs_lib.checkpoint_steps(run) == [2, 4, 6]  # 4 saved anew; 1 past max_to_keep
  assert (run / "checkpoints" / "4.unreadable-0").is_dir()
  assert [row["step"] for row in runs_lib.metrics(run)][-3:] == [4, 5, 6]  # again from 2

  # eval and infer given the run fall back too (they read only params: cut every file),
  # restoring into their shardings
  _truncate_a_data_file(run / "checkpoints" / "6", every=True)
  config = model_setup.initial_config(str(run))
  mesh_config = partitioning.MeshConfig(data=1)
  shardings = partitioning.param_shardings(
      mesh_config.make_mesh(jax.devices()[:1]), mesh_config.axis_rules(),
      network.abstract_variables(network.T5(config))["params"])
  params = model_setup.load_initial_params(str(run), config, shardings)
  assert jax.tree.structure(params) == jax.tree.structure(shardings)
  assert model_setup.checkpoint_step(str(run)) == 4
  assert (run / "checkpoints" / "6.unreadable-0").is_dir()

  for step in (2, 4):
    _truncate_a_data_file(run / "checkpoints" / str(step))
  code, output = runs_lib.finish(runs_lib.start(runs_lib.train_args(run, 8, initial),
                                                tmp_path / "3.log"))
  assert code == 2, output[-3000:]
  assert "no readable checkpoint left" in output and "Traceback" not in output


# load_initial_params onto data=2 x model=4 under FSDP: (placed, equal to `params`, each
# leaf on its sharding).
_LOAD_ONTO_8_DEVICES = """
  from flan_tune.model import network
  from flan_tune.runtime import model_setup, partitioning

  def load_onto_8_devices(directory, config, params):
    mesh_config = partitioning.MeshConfig(data=2, model=4, rules="fsdp")
    shardings = partitioning.param_shardings(
        mesh_config.make_mesh(), mesh_config.axis_rules(),
        network.abstract_variables(network.T5(config))["params"])
    placed = model_setup.load_initial_params(directory, config, shardings)
    same = jax.tree.map(lambda a, b: bool(np.array_equal(np.asarray(a), b)), placed, params)
    where = jax.tree.map(lambda a, s: a.sharding == s, placed, shardings)
    return placed, all(jax.tree.leaves(same)), all(jax.tree.leaves(where))
"""

_SHARDED_RESTORE = _PRELUDE + _LOAD_ONTO_8_DEVICES + """
  from flan_tune.model import checkpoint
  from flan_tune.model.config import T5Config

  config = T5Config(vocab_size=256, d_model=32, num_encoder_layers=2, num_decoder_layers=2,
                    num_heads=4, d_kv=8, d_ff=64)
  params = jax.device_get(network.unbox(network.init_variables(
      network.T5(config), jax.random.key(3))["params"]))
  directory = os.path.join(model_dir, "model")
  checkpoint.save_model(directory, config, params)
  placed, equal, where = load_onto_8_devices(directory, config, params)
  print(json.dumps({"equal": equal, "placed": where,
                    "sharded_leaves": sum(not a.sharding.is_fully_replicated
                                          for a in jax.tree.leaves(placed))}))
"""


def test_a_model_directory_restores_straight_into_its_shardings(tmp_path):
  result = run_script(_SHARDED_RESTORE, tmp_path)
  assert result["equal"] and result["placed"] and result["sharded_leaves"] > 5, result


_HF_PLACED = _PRELUDE + _LOAD_ONTO_8_DEVICES + """
  from flan_tune.model import hf

  directory = os.path.join(model_dir, "hf")
  result = {}
  for scan in (False, True):
    imported_config, params = hf.import_hf(directory)  # the whole model at once
    config = imported_config.replace(scan_layers=scan)
    params = network.stack_layers(params) if scan else params
    _, equal, where = load_onto_8_devices(directory, config, params)
    result[str(scan)] = equal and where
  print(json.dumps(result))
"""


def test_a_transformers_checkpoint_is_placed_one_parameter_at_a_time(tmp_path):
  """The streamed placement gives import_hf's params, scanned or not, in their shardings."""
  from hf_models import save_hf_model

  save_hf_model("v1.1", tmp_path / "hf")
  assert run_script(_HF_PLACED, tmp_path) == {"False": True, "True": True}
