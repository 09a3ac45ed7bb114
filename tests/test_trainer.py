"""Train state and train step (flan_tune.training.train_state, trainer).

The multi-mesh runs happen in one subprocess with 8 CPU devices (XLA_FLAGS only takes
effect before jax initialises); it imports this module for `train_losses` and prints
JSON, and the comparisons with the single-device run live here."""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from training_runs import device_env

from flan_tune.model import network
from flan_tune.model.config import T5Config
from flan_tune.runtime import partitioning
from flan_tune.runtime.model import EncoderDecoderModel
from flan_tune.training import optimizers, train_state, trainer
from flan_tune.runtime.partitioning import MeshConfig

# t5_1_1_tiny shapes with 4 heads (heads and joined_kv 40 divide model=2), vocab 128.
CONFIG = T5Config(vocab_size=128, d_model=32, num_heads=4, d_kv=10, d_ff=48,
                  num_encoder_layers=2, num_decoder_layers=2)
BATCH, INPUT_LENGTH, TARGET_LENGTH = 8, 16, 8

# One worker runs this module, so its 8-device subprocess starts once.
pytestmark = pytest.mark.xdist_group("multi_device")


def make_batch(seed: int, copy: bool = False) -> dict[str, np.ndarray]:
  """Random tokens with some padded tails; `copy`: the target repeats the input's start."""
  rng = np.random.default_rng(seed)
  inputs = rng.integers(2, CONFIG.vocab_size, (BATCH, INPUT_LENGTH), dtype=np.int32)
  targets = (inputs[:, :TARGET_LENGTH].copy() if copy else
             rng.integers(2, CONFIG.vocab_size, (BATCH, TARGET_LENGTH), dtype=np.int32))
  if not copy:
    for row, keep in enumerate(rng.integers(3, TARGET_LENGTH + 1, BATCH)):
      targets[row, keep:] = 0
      inputs[row, INPUT_LENGTH - row:] = 0
  decoder_inputs = np.pad(targets[:, :-1], ((0, 0), (1, 0)))
  return {"encoder_input_tokens": inputs, "decoder_input_tokens": decoder_inputs,
          "decoder_target_tokens": targets,
          "decoder_loss_weights": (targets > 0).astype(np.float32)}


def adafactor():
  # Factor matrices with a dim >= 16, so the state holds replicated v_row / v_col.
  return optimizers.adafactor(optimizers.constant_schedule(1e-2), min_dim_size_to_factor=16)


def setup(mesh_config: MeshConfig, optimizer, devices=None, **step_kwargs):
  """(state, compiled step, batch sharding, mesh) on a mesh."""
  model = EncoderDecoderModel(network.T5(CONFIG))
  mesh, rules = mesh_config.make_mesh(devices), mesh_config.axis_rules()
  shardings = train_state.state_shardings(mesh, rules, model.network, optimizer)
  state = train_state.create(model.network, optimizer, jax.random.key(0), shardings)
  step = trainer.make_train_step(model, optimizer, **step_kwargs)
  data = partitioning.batch_sharding(mesh, rules)
  compiled = trainer.compile_train_step(step, mesh, rules, shardings, data)
  return state, compiled, data, mesh


def train_losses(mesh_config: MeshConfig, steps: int = 3, num_microbatches: int = 1,
                 devices=None) -> dict:
  """Losses of `steps` adafactor steps without dropout, and a few sharding specs."""
  state, step, data, mesh = setup(mesh_config, adafactor(), devices=devices,
                                  num_microbatches=num_microbatches, dropout=False)
  losses = []
  for index in range(steps):
    batch = partitioning.make_global_batch(make_batch(index), mesh, data)
    state, metrics = step(state, batch, jax.random.key(1))
    losses.append(float(metrics["loss"]))
  params = jax.device_get(state.params)
  factored = state.opt_state[0].v_row["decoder"]["logits_dense"]["kernel"]
  return {"losses": losses,
          "embedding": np.asarray(params["token_embedder"]["embedding"]).ravel().tolist(),
          "embedding_spec": str(state.params["token_embedder"]["embedding"].sharding.spec),
          "v_row_spec": str(factored.sharding.spec),
          "v_spec": str(state.opt_state[0].v["encoder"]["encoder_norm"]["scale"]
                        .sharding.spec),
          "step": int(state.step)}


_SCRIPT = textwrap.dedent("""
  import json, sys
  sys.path.insert(0, {tests_dir!r})
  import jax
  import test_trainer as t
  from flan_tune.runtime.partitioning import MeshConfig
  out = {{"devices": jax.device_count()}}
  for name, config, micro in [("8x1", MeshConfig(data=8), 1),
                              ("4x2", MeshConfig(data=4, model=2), 1),
                              ("4x2_fsdp", MeshConfig(data=4, model=2, rules="fsdp"), 1),
                              ("4x2_micro2", MeshConfig(data=4, model=2), 2)]:
    out[name] = t.train_losses(config, num_microbatches=micro)
  print("RESULT" + json.dumps(out))
""")


@pytest.fixture(scope="module")
def eight_device_process():
  """Started before the single-device run is computed, so the two overlap on 2 cores."""
  env = device_env(8)
  script = _SCRIPT.format(tests_dir=os.path.dirname(os.path.abspath(__file__)))
  proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  yield proc
  if proc.poll() is None:
    proc.kill()
    proc.wait()


@pytest.fixture(scope="module")
def single_device():
  return train_losses(MeshConfig(), devices=jax.devices()[:1])


@pytest.fixture(scope="module")
def eight_devices(eight_device_process, single_device):
  stdout, stderr = eight_device_process.communicate(timeout=300)
  assert eight_device_process.returncode == 0, stderr[-4000:]
  line = next(x for x in stdout.splitlines() if x.startswith("RESULT"))
  return json.loads(line[len("RESULT"):])


def test_meshes_give_the_same_losses(eight_device_process, single_device, eight_devices):
  assert eight_devices["devices"] == 8
  reference = np.asarray(single_device["losses"])
  assert single_device["step"] == 3
  assert np.all(np.isfinite(reference))
  for name in ("8x1", "4x2", "4x2_fsdp", "4x2_micro2"):
    np.testing.assert_allclose(eight_devices[name]["losses"], reference, rtol=1e-5,
                               err_msg=name)
    np.testing.assert_allclose(eight_devices[name]["embedding"], single_device["embedding"],
                               rtol=1e-4, atol=1e-6, err_msg=name)


def test_state_follows_parameter_shardings(eight_devices):
  assert eight_devices["4x2"]["embedding_spec"] == "P('model', None)"
  assert eight_devices["4x2_fsdp"]["embedding_spec"] == "P('model', 'data')"
  # Adafactor's factored row statistics are replicated; its unfactored v follows the norm.
  assert eight_devices["4x2_fsdp"]["v_row_spec"] == "P()"
  assert eight_devices["4x2_fsdp"]["v_spec"] == "P('data',)"


def test_adam_state_follows_parameters():
  mesh = MeshConfig().make_mesh(jax.devices()[:1])
  model = network.T5(CONFIG)
  optimizer = optimizers.adamw(1e-3, max_grad_norm=1.0)
  shardings = train_state.state_shardings(mesh, partitioning.FSDP_RULES, model, optimizer)
  adam = shardings.opt_state[1][0]
  assert adam.mu == shardings.params and adam.nu == shardings.params
  assert shardings.step.spec == jax.sharding.PartitionSpec()


def test_eval_step_matches_the_train_loss(single_device):
  """The first train step's loss (no dropout) is the eval loss of the initial params."""
  model = EncoderDecoderModel(network.T5(CONFIG))
  state = train_state.create(model.network, adafactor(), jax.random.key(0))
  metrics = jax.jit(trainer.make_eval_step(model))(state.params, make_batch(0))
  assert float(metrics["loss"]) == pytest.approx(single_device["losses"][0], rel=1e-6)


def test_microbatches_match_one_batch(single_device):
  accumulated = train_losses(MeshConfig(), num_microbatches=2, devices=jax.devices()[:1])
  np.testing.assert_allclose(accumulated["losses"], single_device["losses"], rtol=1e-5)
  np.testing.assert_allclose(accumulated["embedding"], single_device["embedding"],
                             rtol=1e-5, atol=1e-7)


def test_loss_falls_on_a_copy_task_and_the_old_state_is_donated():
  schedule = optimizers.constant_schedule(3e-3)
  state, step, data, mesh = setup(MeshConfig(), optimizers.adamw(schedule, weight_decay=0.0),
                                  devices=jax.devices()[:1], dropout=False,
                                  learning_rate_schedule=schedule)
  batches = [partitioning.make_global_batch(make_batch(seed, copy=True), mesh, data)
             for seed in range(2)]
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # e.g. "Some donated buffers were not usable"
    new_state, metrics = step(state, batches[0], jax.random.key(0))
  assert all(leaf.is_deleted() for leaf in jax.tree.leaves(state))
  assert not any(leaf.is_deleted() for leaf in jax.tree.leaves(new_state))
  state, losses = new_state, [float(metrics["loss"])]
  for index in range(1, 30):
    state, metrics = step(state, batches[index % 2], jax.random.key(0))
    losses.append(float(metrics["loss"]))
  assert int(state.step) == 30
  assert float(metrics["learning_rate"]) == pytest.approx(3e-3)
  assert float(metrics["num_tokens"]) == BATCH * TARGET_LENGTH
  assert float(metrics["grad_norm"]) > 0
  assert np.mean(losses[-4:]) < 0.25 * np.mean(losses[:2]), losses  # ~5.4 -> ~0.6


def test_dropout_depends_on_rng_and_step_only_and_eval_has_none():
  model = EncoderDecoderModel(network.T5(CONFIG.replace(dropout_rate=0.2)))
  optimizer = adafactor()
  step = jax.jit(trainer.make_train_step(model, optimizer, dropout=True))
  state = train_state.create(model.network, optimizer, jax.random.key(0))
  batch = make_batch(0)
  rng = jax.random.key(7)
  _, first = step(state, batch, rng)
  _, again = step(state, batch, rng)
  _, later = step(state.replace(step=state.step + 1), batch, rng)
  assert float(first["loss"]) == float(again["loss"])
  assert float(first["loss"]) != float(later["loss"])
  # The eval step never drops out: deterministic, and not the dropout loss.
  eval_step = jax.jit(trainer.make_eval_step(model))
  eval_metrics = eval_step(state.params, batch)
  assert float(eval_metrics["loss"]) == float(eval_step(state.params, batch)["loss"])
  assert float(eval_metrics["loss"]) != pytest.approx(float(first["loss"]), rel=1e-4)
  assert set(eval_metrics) >= {"loss", "z_loss", "accuracy", "num_tokens"}


def test_check_finite():
  trainer.check_finite({"loss": jnp.float32(2.5)}, 3)
  with pytest.raises(trainer.NonFiniteLossError, match="loss is nan at step 17; the last "
                     "checkpoint is kept"):
    trainer.check_finite({"loss": jnp.float32(np.nan)}, 17)
  with pytest.raises(trainer.NonFiniteLossError, match="loss is inf at step 2"):
    trainer.check_finite({"loss": np.inf}, 2)


def test_bad_arguments():
  model = EncoderDecoderModel(network.T5(CONFIG))
  with pytest.raises(ValueError, match="num_microbatches"):
    trainer.make_train_step(model, adafactor(), num_microbatches=0)
  with pytest.raises(ValueError, match="fixed_factor"):
    EncoderDecoderModel(model.network, normalization="fixed")
  step = trainer.make_train_step(model, adafactor(), num_microbatches=3, dropout=False)
  state = train_state.abstract_state(model.network, adafactor())
  with pytest.raises(ValueError, match="8 rows does not split into 3 microbatches"):
    jax.eval_shape(step, state, make_batch(0), jax.random.key(0))


def test_pending_metrics_stay_on_device_and_a_nan_stops_before_reporting(tmp_path):
  """The loop's metrics are fetched together at a flush; each step's loss is checked
  there in order, so a non-finite step raises before the caller saves, naming its step."""
  from flan_tune.training import reporting
  from flan_tune.training.train import _PendingMetrics

  reporter = reporting.Reporter(str(tmp_path), 0, 10, every=5)
  pending = _PendingMetrics(reporter)
  for step, loss in ((1, 2.0), (2, 1.5)):
    pending.add(step, {"loss": jnp.float32(loss), "num_tokens": jnp.float32(8)})
  assert isinstance(pending._steps[0][1]["loss"], jax.Array)  # not fetched yet
  pending.flush()
  pending.add(3, {"loss": jnp.float32(1.0), "num_tokens": jnp.float32(8)})
  pending.add(4, {"loss": jnp.float32(np.nan), "num_tokens": jnp.float32(8)})
  with pytest.raises(trainer.NonFiniteLossError, match="loss is nan at step 4"):
    pending.flush()
  reporter.close()
  assert [row["step"] for row in reporting.read_metrics(str(tmp_path))] == [1, 2, 3]
