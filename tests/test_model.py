"""The Flax T5: config, logical axes, packing, remat/scan, dtypes, dropout, cached decoding."""

import functools
import glob
import os

import flax.linen as nn
import gin
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flan_tune.model import (ModelConfigError, T5, T5Config, abstract_variables, init_variables,
                             inference, logical_axes, stack_layers, unbox, unstack_layers)

# Tiny models: compile time dominates, and LLVM's optimizations only slow it down.
jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})
GIN_DIR = os.path.join(os.path.dirname(__file__), os.pardir, "gin", "models")
# d_kv * num_heads != d_model and an odd number of heads, on purpose.
TINY = T5Config(vocab_size=64, d_model=32, num_heads=3, d_kv=10, d_ff=48, num_encoder_layers=2,
                num_decoder_layers=2, mlp_activations=("gelu", "linear"))
TINY_V10 = TINY.replace(mlp_activations=("relu",), tie_word_embeddings=True)


@functools.cache
def tiny_params(config: T5Config):
  init = jit(functools.partial(init_variables, T5(config)))
  return unbox(init(jax.random.key(0)))["params"]


@functools.cache
def _jitted_apply(config: T5Config, enable_dropout: bool):
  def apply(params, batch, rng):
    rngs = {"dropout": rng} if rng is not None else {}
    return T5(config).apply({"params": params}, **batch, enable_dropout=enable_dropout,
                            rngs=rngs)
  return jit(apply)


def forward(config, params, batch, *, dropout_rng=None):
  """Logits, jitted (eager Flax is slow op by op); dropout on when given an rng."""
  return _jitted_apply(config, dropout_rng is not None)(params, batch, dropout_rng)


def random_tokens(rng, lengths, width, vocab=64):
  """Rows of random ids in [2, vocab) ending in EOS (1), zero-padded to width."""
  rows = np.zeros((len(lengths), width), np.int32)
  for row, length in enumerate(lengths):
    rows[row, :length - 1] = rng.integers(2, vocab, length - 1)
    rows[row, length - 1] = 1
  return rows


def unpacked_batch(seed=0, encoder_lengths=(7, 4, 9), decoder_lengths=(5, 3, 6), width=(10, 7)):
  rng = np.random.default_rng(seed)
  targets = random_tokens(rng, decoder_lengths, width[1])
  inputs = np.concatenate([np.zeros_like(targets[:, :1]), targets[:, :-1]], axis=1)
  return {"encoder_input_tokens": random_tokens(rng, encoder_lengths, width[0]),
          "decoder_input_tokens": inputs, "decoder_target_tokens": targets}


# --- config ------------------------------------------------------------------------------

@pytest.mark.parametrize("field,value", [
    ("d_kv", 0), ("num_heads", -1), ("vocab_size", 3.5), ("num_decoder_layers", True),
    ("mlp_activations", ("gelu", "swish2")), ("mlp_activations", ()), ("dropout_rate", 1.0),
    ("dtype", "float16"), ("remat_policy", "some"), ("scan_layers", "yes"),
    ("layer_norm_epsilon", 0.0), ("relative_attention_max_distance", 8)])
def test_config_validation_names_the_field(field, value):
  with pytest.raises(ModelConfigError, match=f"T5Config.{field} must be"):
    TINY.replace(**{field: value})


def test_config_lists_become_tuples_and_hf_config_round_trips():
  assert T5Config(mlp_activations=["relu"]).mlp_activations == ("relu",)
  for config in (TINY, TINY_V10):
    assert T5Config.from_hf_config(config.to_hf_config()) == config
  gated = T5Config.from_hf_config({**TINY.to_hf_config(), "feed_forward_proj": "gated-gelu"})
  assert gated.mlp_activations == ("gelu", "linear")  # HF's gated-gelu is the tanh GELU
  exact = T5Config.from_hf_config({**TINY.to_hf_config(), "feed_forward_proj": "gelu"})
  assert exact.mlp_activations == ("gelu_exact",)
  with pytest.raises(ModelConfigError, match="no transformers equivalent"):
    TINY.replace(mlp_activations=("relu", "relu", "linear")).to_hf_config()
  with pytest.raises(ModelConfigError, match="missing field 'd_kv'"):
    T5Config.from_hf_config({k: v for k, v in TINY.to_hf_config().items() if k != "d_kv"})


def test_every_gin_model_file_parses_and_builds_a_config():
  files = sorted(glob.glob(os.path.join(GIN_DIR, "*.gin")))
  names = {os.path.basename(f) for f in files}
  assert {"t5_1_1_tiny.gin", "t5_1_1_small.gin", "t5_1_1_base.gin", "t5_1_1_large.gin",
          "t5_1_1_xl.gin", "t5_1_1_xxl.gin", "t5_1_0_small.gin", "t5_1_0_base.gin",
          "offline_demo.gin"} <= names
  configs = {}
  try:
    for path in files:
      gin.clear_config()
      gin.parse_config_file(path)
      configs[os.path.basename(path)] = T5Config()
  finally:
    gin.clear_config()
  assert configs["t5_1_1_xxl.gin"].d_ff == 10240 and configs["t5_1_1_xxl.gin"].num_heads == 64
  assert configs["t5_1_0_small.gin"].tie_word_embeddings
  assert configs["t5_1_0_small.gin"].mlp_activations == ("relu",)
  demo = configs["offline_demo.gin"]
  assert demo.vocab_size % 128 == 0 and demo.vocab_size >= 4000 + 100
  tiny = configs["t5_1_1_tiny.gin"]
  assert tiny.d_model == 32 and tiny.num_heads * tiny.d_kv != tiny.d_model


# --- parameters and logical axes -----------------------------------------------------------

@pytest.mark.parametrize("scan", [False, True])
def test_every_param_is_float32_with_logical_names_of_its_rank(scan):
  config = TINY.replace(scan_layers=scan)
  boxed = abstract_variables(T5(config))["params"]
  axes = logical_axes(boxed)
  shapes = unbox(boxed)
  flat_axes = jax.tree_util.tree_leaves_with_path(axes, is_leaf=lambda x: isinstance(
      x, jax.sharding.PartitionSpec))
  flat_shapes = dict(jax.tree_util.tree_leaves_with_path(shapes))
  assert len(flat_axes) == len(flat_shapes) > 10
  allowed = {"vocab", "embed", "joined_kv", "mlp", "heads", "relpos_buckets", "layers"}
  for path, spec in flat_axes:
    leaf = flat_shapes[path]
    assert leaf.dtype == jnp.float32, path
    assert len(spec) == leaf.ndim and set(spec) <= allowed, (path, spec, leaf.shape)
    in_layers = any(getattr(k, "key", None) == "layers" for k in path)
    assert (spec[0] == "layers") == (scan and in_layers), (path, spec)
  assert axes["token_embedder"]["embedding"] == jax.sharding.PartitionSpec("vocab", "embed")
  assert "logits_dense" in shapes["decoder"]
  assert "logits_dense" not in abstract_variables(T5(TINY_V10))["params"]["decoder"]


def test_stack_and_unstack_layers_are_inverse():
  params = tiny_params(TINY)
  stacked = stack_layers(params)
  assert stacked["encoder"]["layers"]["mlp"]["wo"]["kernel"].shape == (2, 48, 32)
  restored = unstack_layers(stacked)
  jax.tree.map(np.testing.assert_array_equal, restored, params)


# --- packing -------------------------------------------------------------------------------

def pack(examples, width):
  """seqio EncDecFeatureConverter-style packing of (encoder ids, decoder targets) rows."""
  features = {k: np.zeros((1, w), np.int32) for k, w in (
      ("encoder_input_tokens", width[0]), ("encoder_segment_ids", width[0]),
      ("encoder_positions", width[0]), ("decoder_target_tokens", width[1]),
      ("decoder_input_tokens", width[1]), ("decoder_segment_ids", width[1]),
      ("decoder_positions", width[1]))}
  offsets = [0, 0]
  for segment, (inputs, targets) in enumerate(examples, start=1):
    for side, ids, prefix in ((0, inputs, "encoder"), (1, targets, "decoder")):
      start, end = offsets[side], offsets[side] + len(ids)
      features[f"{prefix}_segment_ids"][0, start:end] = segment
      features[f"{prefix}_positions"][0, start:end] = np.arange(len(ids))
      if side == 0:
        features["encoder_input_tokens"][0, start:end] = ids
      else:
        features["decoder_target_tokens"][0, start:end] = ids
        features["decoder_input_tokens"][0, start:end] = np.concatenate([[0], ids[:-1]])
      offsets[side] = end
  return features


def test_packed_examples_give_the_logits_of_each_example_alone():
  rng = np.random.default_rng(1)
  enc_lengths, dec_lengths = (5, 7, 3), (4, 2, 5)
  examples = [(random_tokens(rng, [e], e)[0], random_tokens(rng, [d], d)[0])
              for e, d in zip(enc_lengths, dec_lengths, strict=True)]
  packed = pack(examples, (18, 13))  # padding left at the end of both rows
  # Each example alone: one row each of an unpacked (zero-padded) batch.
  targets = np.stack([np.pad(d, (0, 6 - len(d))) for _, d in examples])
  alone = {"encoder_input_tokens": np.stack([np.pad(e, (0, 9 - len(e))) for e, _ in examples]),
           "decoder_target_tokens": targets,
           "decoder_input_tokens": np.pad(targets, ((0, 0), (1, 0)))[:, :-1]}
  no_positions = {k: v for k, v in packed.items() if not k.endswith("_positions")}
  params = tiny_params(TINY)
  alone_logits = np.asarray(forward(TINY, params, alone))
  for batch in (packed, no_positions):
    packed_logits = np.asarray(forward(TINY, params, batch))[0]
    starts = np.cumsum((0,) + dec_lengths)
    for row, length in enumerate(dec_lengths):
      np.testing.assert_allclose(packed_logits[starts[row]:starts[row] + length],
                                 alone_logits[row, :length], atol=1e-5, rtol=1e-5)


# --- execution variants --------------------------------------------------------------------

@functools.cache
def _jitted_grad(config: T5Config):
  """Gradient of a scalar of the logits on unpacked_batch()."""
  batch = unpacked_batch()

  def loss(params):
    logits = T5(config).apply({"params": params}, **batch, enable_dropout=False)
    return jnp.sum(logits ** 2) * 1e-3
  return jit(jax.grad(loss))


@pytest.mark.parametrize("scan,remat", [(False, "full"), (True, "dots")])
def test_remat_and_scan_match_the_plain_model_in_outputs_and_gradients(scan, remat):
  batch = unpacked_batch()
  params = tiny_params(TINY)
  variant = TINY.replace(scan_layers=scan, remat_policy=remat)
  variant_params = stack_layers(params) if scan else params

  np.testing.assert_allclose(forward(variant, variant_params, batch), forward(TINY, params, batch),
                             atol=1e-5, rtol=1e-6)
  grads = _jitted_grad(TINY)(params)
  variant_grads = _jitted_grad(variant)(variant_params)
  if scan:
    variant_grads = unstack_layers(variant_grads)
  jax.tree.map(functools.partial(np.testing.assert_allclose, atol=1e-5, rtol=1e-4),
               variant_grads, grads)


def test_bfloat16_activations_run_and_stay_close_to_float32():
  batch = unpacked_batch()
  params = tiny_params(TINY)
  logits16 = forward(TINY.replace(dtype="bfloat16"), params, batch)
  assert logits16.dtype == jnp.bfloat16
  logits32 = forward(TINY, params, batch)
  valid = batch["decoder_target_tokens"] > 0
  error = np.abs(np.asarray(logits16, np.float32) - np.asarray(logits32))[valid]
  assert error.max() < 0.1 * np.abs(np.asarray(logits32)[valid]).max()
  assert np.isfinite(np.asarray(logits16, np.float32)).all()


def test_dropout_only_when_enabled_and_reproducible_under_an_rng():
  config = TINY.replace(dropout_rate=0.3)
  params, batch = tiny_params(TINY), unpacked_batch()
  off = forward(config, params, batch)
  np.testing.assert_array_equal(off, forward(TINY, params, batch))

  def on(seed, variant=config, variant_params=params):
    # RBG keys compile far faster than threefry on CPU; dropout semantics are the same.
    return forward(variant, variant_params, batch, dropout_rng=jax.random.key(seed, impl="rbg"))

  np.testing.assert_array_equal(on(0), on(0))
  assert not np.allclose(on(0), on(1))
  assert not np.allclose(on(0), off)
  with pytest.raises(Exception, match="dropout"):  # enabled without an rng: loud, not silent
    jax.eval_shape(lambda p: T5(config).apply({"params": p}, **batch, enable_dropout=True),
                   params)
  scanned = config.replace(scan_layers=True, remat_policy="full")
  scanned_params = stack_layers(params)
  np.testing.assert_array_equal(on(3, scanned, scanned_params), on(3, scanned, scanned_params))
  assert not np.allclose(on(3, scanned, scanned_params), off)


# --- incremental decoding ------------------------------------------------------------------

@functools.cache
def jitted_decoding(config: T5Config, max_length: int):
  """(encode, init_cache, decode_step) of inference, jitted for one config."""
  model = T5(config)
  return (jit(functools.partial(inference.encode, model)),
          jit(functools.partial(inference.init_cache, model, max_decode_length=max_length)),
          jit(functools.partial(inference.decode_step, model)))


@pytest.mark.parametrize("config", [TINY, TINY_V10, TINY.replace(scan_layers=True),
                                    TINY.replace(dtype="bfloat16")],
                         ids=["v1.1", "v1.0", "scanned", "bfloat16"])
def test_cached_single_steps_equal_the_teacher_forced_pass(config):
  batch = unpacked_batch(encoder_lengths=(7, 4, 9), decoder_lengths=(7, 7, 7))
  params = tiny_params(config.replace(dtype="float32", scan_layers=False))
  if config.scan_layers:
    params = stack_layers(params)
  full = np.asarray(forward(config, params, batch), np.float32)
  max_length = 9  # longer than the steps taken: unwritten slots must stay invisible
  encode, init_cache, step = jitted_decoding(config, max_length)
  encoded = encode(params, batch["encoder_input_tokens"])
  cache = init_cache(params, encoded, batch["encoder_input_tokens"])
  assert inference.cache_length(cache) == max_length
  steps = []
  for position in range(batch["decoder_input_tokens"].shape[1]):
    logits, cache = step(params, cache, jnp.asarray(batch["decoder_input_tokens"][:, position]))
    steps.append(np.asarray(logits, np.float32))
  tolerance = 1e-5 if config.dtype == "float32" else 5e-2
  np.testing.assert_allclose(np.stack(steps, axis=1), full, atol=tolerance, rtol=tolerance)
  assert int(cache["decoder"]["cache_index"]) == 7


def test_decode_step_takes_several_tokens_and_cache_maps_over_the_batch():
  batch = unpacked_batch(decoder_lengths=(7, 7, 7))
  params = tiny_params(TINY)
  full = np.asarray(forward(TINY, params, batch))
  encode, init_cache, step = jitted_decoding(TINY, 9)
  cache = init_cache(params, encode(params, batch["encoder_input_tokens"]),
                     batch["encoder_input_tokens"])
  prefix, cache = step(params, cache, batch["decoder_input_tokens"][:, :4])
  np.testing.assert_allclose(prefix, full[:, :4], atol=1e-5)
  # Beam-search style: repeat every row twice, then keep only the copies of row 2.
  doubled = inference.map_cache_batch(lambda x: jnp.repeat(x, 2, axis=0), cache)
  chosen = inference.map_cache_batch(lambda x: x[jnp.array([4, 5])], doubled)
  logits, _ = step(params, chosen, jnp.repeat(batch["decoder_input_tokens"][2:, 4], 2))
  np.testing.assert_allclose(logits, np.repeat(full[2:, 4], 2, axis=0), atol=1e-5)


def test_logical_constraints_shard_activations_under_rules():
  """With axis rules and a mesh the model runs through every with_logical_constraint."""
  mesh = jax.make_mesh((1,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  rules = (("batch", "data"), ("vocab", None), ("embed", None), ("mlp", None), ("heads", None),
           ("kv", None), ("joined_kv", None), ("length", None), ("relpos_buckets", None),
           ("layers", None))
  batch, params = unpacked_batch(), tiny_params(TINY)

  def apply(p, b):
    return T5(TINY).apply({"params": p}, **b, enable_dropout=False)

  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    assert "sharding_constraint" in str(jax.make_jaxpr(apply)(params, batch))
    logits = jit(apply)(params, batch)  # a fresh jit: traced under the rules
  np.testing.assert_allclose(logits, forward(TINY, params, batch), atol=1e-5)


@pytest.mark.parametrize("bias_batch", [1, 3])
def test_position_bias_gradient_equals_autodiff_of_the_sum(bias_batch):
  """add_position_bias computes a batch-shared bias's gradient in its own way (a dot
  against ones, for XLA:CPU's sake); it must equal differentiating logits + bias."""
  from flan_tune.model.layers import add_position_bias

  logits = jax.random.normal(jax.random.key(0), (3, 2, 5, 7))
  bias = jax.random.normal(jax.random.key(1), (bias_batch, 2, 5, 7))
  weights = jax.random.normal(jax.random.key(2), logits.shape)

  def loss(add, logits, bias):
    return jnp.sum(jnp.tanh(add(logits, bias)) * weights)

  ours = jax.grad(functools.partial(loss, add_position_bias), argnums=(0, 1))(logits, bias)
  plain = jax.grad(functools.partial(loss, jnp.add), argnums=(0, 1))(logits, bias)
  np.testing.assert_allclose(add_position_bias(logits, bias), logits + bias)
  for got, want in zip(ours, plain):
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_matmul_gradients_equal_autodiff_in_float32_and_stay_close_in_bfloat16():
  """layers.matmul differentiates by hand (bfloat16 operands in the backward matmuls)."""
  from flan_tune.model.layers import matmul

  x = jax.random.normal(jax.random.key(0), (2, 5, 16))
  kernel = jax.random.normal(jax.random.key(1), (16, 8)) / 4
  weights = jax.random.normal(jax.random.key(2), (2, 5, 8))

  def loss(fn, x, kernel):
    return jnp.sum(jnp.tanh(fn(x, kernel)).astype(jnp.float32) * weights)

  reference = jax.grad(functools.partial(loss, lambda x, k: x @ k), argnums=(0, 1))(x, kernel)
  for dtype, tolerance in ((jnp.float32, 1e-5), (jnp.bfloat16, 3e-2)):
    grads = jax.grad(functools.partial(loss, lambda x, k: matmul(x, k, jnp.dtype(dtype))),
                     argnums=(0, 1))(x.astype(dtype), kernel)
    assert grads[0].dtype == dtype and grads[1].dtype == jnp.float32
    for got, want in zip(grads, reference):
      np.testing.assert_allclose(np.asarray(got, np.float32), want,
                                 rtol=tolerance, atol=tolerance)
