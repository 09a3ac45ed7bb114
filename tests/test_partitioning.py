"""Mesh, rules and shardings (flan_tune.runtime.partitioning).

The multi-device checks run in one subprocess with 8 CPU devices: XLA_FLAGS only takes
effect before jax initialises, which an earlier test in the same xdist worker may have
done. The subprocess prints JSON; the assertions live here."""

import json
import subprocess
import sys
import textwrap

import jax
import pytest

from training_runs import device_env

from flan_tune.runtime import partitioning
from flan_tune.runtime.partitioning import MeshConfig, PartitioningError

_SCRIPT = textwrap.dedent("""
  import json, logging
  import jax, jax.numpy as jnp, numpy as np
  from jax.sharding import NamedSharding, PartitionSpec as P
  from flan_tune.model import network
  from flan_tune.model.config import T5Config
  from flan_tune.runtime import partitioning as pt

  out = {"devices": jax.device_count()}
  out["meshes"] = {f"{d}x{m}": dict(pt.MeshConfig(data=d, model=m).make_mesh().shape)
                   for d, m in [(-1, 1), (4, 2), (2, -1)]}

  # t5_1_1_tiny shapes with 4 heads, so heads and joined_kv (40) divide model=2 and 4.
  config = T5Config(vocab_size=256, d_model=32, num_heads=4, d_kv=10, d_ff=48,
                    num_encoder_layers=2, num_decoder_layers=2)
  model = network.T5(config)
  abstract = network.abstract_variables(model)["params"]
  params = network.unbox(network.init_variables(model, jax.random.key(0))["params"])
  rng = np.random.default_rng(0)
  batch = {"encoder_input_tokens": rng.integers(1, 256, (8, 12), dtype=np.int32),
           "decoder_input_tokens": rng.integers(1, 256, (8, 6), dtype=np.int32),
           "decoder_target_tokens": rng.integers(1, 256, (8, 6), dtype=np.int32)}

  def apply(p, b):
    return model.apply({"params": p}, **b, enable_dropout=False)

  reference = np.asarray(jax.jit(apply)(params, batch))
  names = {"embedding": ("token_embedder", "embedding"),
           "wi_0": ("encoder", "layers_0", "mlp", "wi_0", "kernel"),
           "wo": ("decoder", "layers_1", "mlp", "wo", "kernel"),
           "query": ("encoder", "layers_0", "attention", "query", "kernel"),
           "out": ("decoder", "layers_0", "self_attention", "out", "kernel"),
           "relpos": ("encoder", "relpos_bias", "rel_embedding"),
           "norm": ("decoder", "decoder_norm", "scale"),
           "logits": ("decoder", "logits_dense", "kernel")}

  def lookup(tree, path):
    for key in path:
      tree = tree[key]
    return tree

  def run(mesh_config, abstract_tree, params_tree):
    mesh, rules = mesh_config.make_mesh(), mesh_config.axis_rules()
    shardings = pt.param_shardings(mesh, rules, abstract_tree)
    sharded = pt.shard_params(params_tree, shardings)
    data = pt.batch_sharding(mesh, rules)
    global_batch = pt.make_global_batch(batch, mesh, data)
    logits_sharding = NamedSharding(mesh, P("data", None, None))
    step = jax.jit(apply, in_shardings=(shardings, {k: data for k in batch}),
                   out_shardings=logits_sharding)
    with pt.activate(mesh, rules):
      logits = step(sharded, global_batch)
    return mesh, shardings, sharded, global_batch, logits

  out["runs"] = {}
  for d, m, rules in [(4, 2, "standard"), (4, 2, "fsdp"), (2, 4, "standard"), (8, 1, "fsdp")]:
    mesh_config = pt.MeshConfig(data=d, model=m, rules=rules)
    mesh, shardings, sharded, global_batch, logits = run(mesh_config, abstract, params)
    tokens = global_batch["encoder_input_tokens"]
    out["runs"][f"{d}x{m}_{rules}"] = {
        "specs": {k: str(lookup(shardings, p).spec) for k, p in names.items()},
        "embedding_shard": list(lookup(sharded, names["embedding"]).addressable_shards[0]
                                .data.shape),
        "batch_shards": sorted({str(s.index) for s in tokens.addressable_shards}),
        "batch_shard_shape": list(tokens.addressable_shards[0].data.shape),
        "batch_equal": bool(np.array_equal(np.asarray(tokens),
                                           batch["encoder_input_tokens"])),
        "logits_spec": str(logits.sharding.spec),
        "max_diff": float(np.max(np.abs(np.asarray(logits) - reference))),
    }

  # 3 heads (t5_1_1_tiny itself) over model=4: heads and joined_kv 30 do not divide.
  warnings = []
  handler = logging.Handler()
  handler.emit = lambda record: warnings.append(record.getMessage())
  logging.getLogger().addHandler(handler)
  config = config.replace(num_heads=3)
  model = network.T5(config)
  abstract = network.abstract_variables(model)["params"]
  params = network.unbox(network.init_variables(model, jax.random.key(0))["params"])
  reference = np.asarray(jax.jit(apply)(params, batch))
  _, shardings, _, _, logits = run(pt.MeshConfig(data=2, model=4), abstract, params)
  out["fallback"] = {
      "specs": {k: str(lookup(shardings, p).spec) for k, p in names.items()},
      "warnings": warnings, "max_diff": float(np.max(np.abs(np.asarray(logits) - reference)))}

  errors = {}
  mesh = pt.MeshConfig(data=4, model=2).make_mesh()
  for name, thunk in [
      ("batch", lambda: pt.check_batch_size(6, mesh, pt.STANDARD_RULES)),
      ("model3", lambda: pt.MeshConfig(model=3).make_mesh()),
      ("product", lambda: pt.MeshConfig(data=4, model=4).make_mesh())]:
    try:
      thunk()
      errors[name] = None
    except pt.PartitioningError as e:
      errors[name] = str(e)
  pt.check_batch_size(16, mesh, pt.STANDARD_RULES)
  out["errors"] = errors
  print("RESULT" + json.dumps(out))
""")

# One worker runs this module, so its 8-device subprocess starts once.
pytestmark = pytest.mark.xdist_group("multi_device")


@pytest.fixture(scope="module")
def eight_devices():
  env = device_env(8)
  proc = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True,
                        text=True, timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr[-4000:]
  line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
  return json.loads(line[len("RESULT"):])


def test_meshes_build(eight_devices):
  assert eight_devices["devices"] == 8
  assert eight_devices["meshes"] == {"-1x1": {"data": 8, "model": 1},
                                     "4x2": {"data": 4, "model": 2},
                                     "2x-1": {"data": 2, "model": 4}}


def test_standard_rules_specs(eight_devices):
  specs = eight_devices["runs"]["4x2_standard"]["specs"]
  assert specs == {
      "embedding": "P('model', None)",
      "wi_0": "P(None, 'model')",
      "wo": "P('model', None)",
      "query": "P(None, 'model')",
      "out": "P('model', None)",
      "relpos": "P('model', None)",
      "norm": "P(None,)",
      "logits": "P(None, 'model')",
  }
  assert eight_devices["runs"]["4x2_standard"]["embedding_shard"] == [128, 32]


def test_fsdp_rules_specs(eight_devices):
  specs = eight_devices["runs"]["4x2_fsdp"]["specs"]
  assert specs == {
      "embedding": "P('model', 'data')",
      "wi_0": "P('data', 'model')",
      "wo": "P('model', 'data')",
      "query": "P('data', 'model')",
      "out": "P('model', 'data')",
      "relpos": "P('model', None)",
      "norm": "P('data',)",
      "logits": "P('data', 'model')",
  }
  assert eight_devices["runs"]["4x2_fsdp"]["embedding_shard"] == [128, 8]


def test_sharded_forward_matches_single_device(eight_devices):
  for name, run in eight_devices["runs"].items():
    assert run["max_diff"] < 1e-5, name
    assert run["logits_spec"] == "P('data', None, None)", name


def test_batch_split_over_data(eight_devices):
  runs = eight_devices["runs"]
  assert runs["4x2_standard"]["batch_shard_shape"] == [2, 12]
  assert len(runs["4x2_standard"]["batch_shards"]) == 4  # model replicas share a shard
  assert runs["2x4_standard"]["batch_shard_shape"] == [4, 12]
  assert runs["8x1_fsdp"]["batch_shard_shape"] == [1, 12]
  assert all(run["batch_equal"] for run in runs.values())


def test_indivisible_heads_fall_back_to_replication(eight_devices):
  fallback = eight_devices["fallback"]
  assert fallback["specs"]["relpos"] == "P(None, None)"
  assert fallback["specs"]["query"] == "P(None, None)"  # joined_kv 30 over 4
  assert fallback["specs"]["wi_0"] == "P(None, 'model')"
  assert fallback["max_diff"] < 1e-5
  (warning,) = [w for w in fallback["warnings"] if "replicating" in w]
  assert "encoder/relpos_bias/rel_embedding: dim 0 (3) over 'model' (4)" in warning
  assert "encoder/layers_0/attention/query/kernel: dim 1 (30)" in warning


def test_multi_device_errors(eight_devices):
  errors = eight_devices["errors"]
  assert "global batch size 6 is not divisible by the data-parallel size 4" in errors["batch"]
  assert errors["model3"] == "MeshConfig.model=3 does not divide 8 devices"
  assert errors["product"] == "MeshConfig.data=4 x MeshConfig.model=4 = 16 devices, but there are 8"


@pytest.mark.parametrize("data, model, message", [
    (0, 1, "MeshConfig.data=0 must be a positive int or -1"),
    (2, -3, "MeshConfig.model=-3 must be a positive int or -1"),
    (-1, -1, "at most one of MeshConfig.data, MeshConfig.model may be -1"),
    (3, -1, "MeshConfig.data=3 does not divide 8 devices"),
])
def test_bad_axis_sizes(data, model, message):
  with pytest.raises(PartitioningError, match=message):
    MeshConfig(data=data, model=model).axis_sizes(8)


def test_axis_sizes_and_rules():
  assert MeshConfig().axis_sizes(8) == (8, 1)
  assert MeshConfig(data=2, model=-1).axis_sizes(8) == (2, 4)
  assert MeshConfig(rules="fsdp").axis_rules() is partitioning.FSDP_RULES
  with pytest.raises(PartitioningError, match="MeshConfig.rules='2d' is not a rule set"):
    MeshConfig(rules="2d").axis_rules()
  assert partitioning.batch_spec(partitioning.STANDARD_RULES) == jax.sharding.PartitionSpec(
      "data", None)


def test_single_device_mesh():
  mesh = MeshConfig().make_mesh(jax.devices()[:1])
  assert dict(mesh.shape) == {"data": 1, "model": 1}
  partitioning.check_batch_size(3, mesh, partitioning.FSDP_RULES)
