"""The T5 encoder-decoder (Flax linen), fed with seqio's EncDecFeatureConverter features.

`T5(config)` takes T5X's feature names: encoder_input_tokens, decoder_input_tokens,
decoder_target_tokens, and for packed batches encoder/decoder_segment_ids and
encoder/decoder_positions. Token id 0 is padding. Segment ids keep packed examples
from attending to each other (encoder self-attention, decoder self-attention, and
cross-attention only between equal segment ids); positions restart per example and
feed the relative position bias. Without positions the bias uses 0..length-1, which
gives the same result for seqio's packing (each example is contiguous and attention
across examples is masked).

Parameter tree (unscanned; T5X names, logical axes in brackets):

  token_embedder/embedding                      [vocab, embed]
  encoder/relpos_bias/rel_embedding             [heads, relpos_buckets]
  encoder/layers_{i}/pre_attention_layer_norm/scale        [embed]
  encoder/layers_{i}/attention/{query,key,value}/kernel    [embed, joined_kv]
  encoder/layers_{i}/attention/out/kernel                  [joined_kv, embed]
  encoder/layers_{i}/pre_mlp_layer_norm/scale              [embed]
  encoder/layers_{i}/mlp/{wi | wi_0, wi_1}/kernel          [embed, mlp]
  encoder/layers_{i}/mlp/wo/kernel                         [mlp, embed]
  encoder/encoder_norm/scale                               [embed]
  decoder/relpos_bias/rel_embedding             [heads, relpos_buckets]
  decoder/layers_{i}/pre_self_attention_layer_norm, self_attention,
                     pre_cross_attention_layer_norm, encoder_decoder_attention,
                     pre_mlp_layer_norm, mlp   (as in the encoder)
  decoder/decoder_norm/scale                               [embed]
  decoder/logits_dense/kernel                   [embed, vocab]   (untied models only)

With `scan_layers`, `layers_{i}` become one `layers` subtree whose arrays have a leading
axis of length num_layers, named "layers". `stack_layers` / `unstack_layers` convert.

Autoregressive decoding uses a "cache" collection; `flan_tune.model.inference` wraps it
(encode once, `init_cache`, `decode_step`) and documents its layout.
"""

import functools
import re
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from flan_tune.model import layers
from flan_tune.model.config import T5Config

Array = jax.Array
PyTree = Any

_REMAT_POLICIES = {
    "full": None,  # save nothing, recompute the whole layer
    "dots": jax.checkpoint_policies.checkpoint_dots,
    "dots_with_no_batch_dims": jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims,
}
_LAYER_KEY = re.compile(r"layers_(\d+)$")


def _attention_mask(query_valid: Array, key_valid: Array) -> Array:
  """(b, q) and (b, k) booleans -> (b, 1, q, k): True where the query may attend the key."""
  return (query_valid[:, :, None] & key_valid[:, None, :])[:, None]


def _segment_mask(query_segments: Array | None, key_segments: Array | None) -> Array | bool:
  if query_segments is None or key_segments is None:
    return True
  return (query_segments[:, :, None] == key_segments[:, None, :])[:, None]


def _causal_mask(length: int) -> Array:
  return jnp.tril(jnp.ones((length, length), jnp.bool_))[None, None]


def _default_positions(length: int) -> Array:
  return jnp.arange(length, dtype=jnp.int32)[None]


class EncoderLayer(nn.Module):
  """Pre-norm self-attention and MLP blocks with residuals."""

  config: T5Config
  deterministic: bool = True
  returns_carry: bool = False  # nn.scan wants (carry, output)
  lora: layers.Lora | None = None

  @nn.compact
  def __call__(self, x: Array, position_bias: Array, mask: Array):
    cfg, dtype = self.config, self.config.activation_dtype
    dropout = functools.partial(nn.Dropout(cfg.dropout_rate), deterministic=self.deterministic)
    normed = layers.RMSNorm(cfg.layer_norm_epsilon, dtype, name="pre_attention_layer_norm")(x)
    attended = layers.MultiHeadAttention(cfg.num_heads, cfg.d_kv, cfg.dropout_rate, dtype,
                                         lora=self.lora, name="attention")(
        normed, normed, position_bias, mask, deterministic=self.deterministic)
    x = x + dropout(attended)
    normed = layers.RMSNorm(cfg.layer_norm_epsilon, dtype, name="pre_mlp_layer_norm")(x)
    x = x + dropout(layers.MlpBlock(cfg.d_ff, cfg.mlp_activations, cfg.dropout_rate, dtype,
                                    lora=self.lora, name="mlp")(
        normed, deterministic=self.deterministic))
    x = nn.with_logical_constraint(x, ("batch", "length", "embed"))
    return (x, None) if self.returns_carry else x


class DecoderLayer(nn.Module):
  """Pre-norm causal self-attention, cross-attention and MLP blocks with residuals."""

  config: T5Config
  deterministic: bool = True
  decode: bool = False
  max_decode_length: int | None = None
  returns_carry: bool = False
  lora: layers.Lora | None = None

  @nn.compact
  def __call__(self, y: Array, encoded: Array | None, position_bias: Array, self_mask: Array,
               cross_mask: Array, cache_index: Array | None):
    cfg, dtype = self.config, self.config.activation_dtype
    dropout = functools.partial(nn.Dropout(cfg.dropout_rate), deterministic=self.deterministic)
    attention = functools.partial(layers.MultiHeadAttention, cfg.num_heads, cfg.d_kv,
                                  cfg.dropout_rate, dtype, lora=self.lora)
    normed = layers.RMSNorm(cfg.layer_norm_epsilon, dtype, name="pre_self_attention_layer_norm")(y)
    attended = attention(name="self_attention")(
        normed, normed, position_bias, self_mask, deterministic=self.deterministic,
        cache="self" if self.decode else None, cache_index=cache_index,
        max_length=self.max_decode_length)
    y = y + dropout(attended)
    normed = layers.RMSNorm(cfg.layer_norm_epsilon, dtype,
                            name="pre_cross_attention_layer_norm")(y)
    attended = attention(name="encoder_decoder_attention")(
        normed, encoded, None, cross_mask, deterministic=self.deterministic,
        cache="cross" if self.decode else None)
    y = y + dropout(attended)
    normed = layers.RMSNorm(cfg.layer_norm_epsilon, dtype, name="pre_mlp_layer_norm")(y)
    y = y + dropout(layers.MlpBlock(cfg.d_ff, cfg.mlp_activations, cfg.dropout_rate, dtype,
                                    lora=self.lora, name="mlp")(
        normed, deterministic=self.deterministic))
    y = nn.with_logical_constraint(y, ("batch", "length", "embed"))
    return (y, None) if self.returns_carry else y


def _run_layers(layer_cls: type[nn.Module], num_layers: int, x: Array,
                *args, **attributes) -> Array:
  """Applies num_layers layers: a Python loop, or one nn.scan; optionally rematerialized.

  Called from a compact method, so the layers become children named layers_{i} or layers."""
  cfg: T5Config = attributes["config"]
  scanned = cfg.scan_layers
  if cfg.remat_policy != "none":
    layer_cls = nn.remat(layer_cls, policy=_REMAT_POLICIES[cfg.remat_policy],
                         prevent_cse=not scanned)
  if not scanned:
    for index in range(num_layers):
      x = layer_cls(**attributes, name=f"layers_{index}")(x, *args)
    return x
  stack = nn.scan(layer_cls,
                  variable_axes={"params": 0, "cache": 1},  # cache keeps batch on axis 0
                  split_rngs={"params": True, "dropout": True},
                  in_axes=(nn.broadcast,) * len(args),
                  length=num_layers,
                  metadata_params={nn.PARTITION_NAME: "layers"})
  x, _ = stack(**attributes, returns_carry=True, name="layers")(x, *args)
  return x


class Encoder(nn.Module):
  config: T5Config
  shared_embedding: nn.Module
  prompt_length: int = 0
  lora: layers.Lora | None = None

  @nn.compact
  def __call__(self, encoder_input_tokens: Array, encoder_segment_ids: Array | None = None,
               encoder_positions: Array | None = None, *, deterministic: bool) -> Array:
    cfg = self.config
    x = self.shared_embedding(encoder_input_tokens)
    if self.prompt_length:
      x = self._prepend_prompt(x, encoder_segment_ids, encoder_positions)
      encoder_input_tokens = with_prompt_slots(encoder_input_tokens, self.prompt_length)
    length = encoder_input_tokens.shape[1]
    x = nn.Dropout(cfg.dropout_rate)(x, deterministic=deterministic)
    x = nn.with_logical_constraint(x, ("batch", "length", "embed"))
    valid = encoder_input_tokens > 0
    mask = _attention_mask(valid, valid) & _segment_mask(encoder_segment_ids, encoder_segment_ids)
    positions = _default_positions(length) if encoder_positions is None else encoder_positions
    position_bias = layers.RelativePositionBias(
        cfg.relative_attention_num_buckets, cfg.relative_attention_max_distance, cfg.num_heads,
        bidirectional=True, dtype=cfg.activation_dtype, name="relpos_bias")(positions, positions)
    x = _run_layers(EncoderLayer, cfg.num_encoder_layers, x, position_bias, mask,
                    config=cfg, deterministic=deterministic, lora=self.lora)
    x = layers.RMSNorm(cfg.layer_norm_epsilon, cfg.activation_dtype, name="encoder_norm")(x)
    return nn.Dropout(cfg.dropout_rate)(x, deterministic=deterministic)

  def _prepend_prompt(self, x: Array, segment_ids: Array | None,
                      positions: Array | None) -> Array:
    """The soft prompt (flan_tune.model.peft) before every row's embedded tokens."""
    if segment_ids is not None or positions is not None:
      raise ValueError("a soft prompt needs unpacked rows (TrainInput.pack=False): with "
                       "packing one prompt would serve several examples")
    prompt = self.param("prompt", nn.with_logical_partitioning(
        _uniform_prompt_init, ("prompt_length", "prompt_embed")),
        (self.prompt_length, x.shape[-1]), jnp.float32)
    prompt = jnp.broadcast_to(prompt.astype(x.dtype), (x.shape[0],) + prompt.shape)
    return jnp.concatenate([prompt, x], axis=1)


class Decoder(nn.Module):
  config: T5Config
  shared_embedding: nn.Module
  lora: layers.Lora | None = None

  @nn.compact
  def __call__(self, encoded: Array | None, encoder_input_tokens: Array | None,
               decoder_input_tokens: Array, decoder_target_tokens: Array | None = None,
               encoder_segment_ids: Array | None = None,
               decoder_segment_ids: Array | None = None,
               decoder_positions: Array | None = None, *, deterministic: bool,
               decode: bool = False, max_decode_length: int | None = None) -> Array:
    cfg = self.config
    length = decoder_input_tokens.shape[1]
    cache_index = None
    if decode and self.has_variable("cache", "cache_index"):
      # One step (or a few tokens) against the cache: queries sit at cache_index onwards.
      index_var = self.variable("cache", "cache_index", jnp.zeros, (), jnp.int32)
      encoder_valid = self.variable("cache", "encoder_valid", lambda: None).value
      cache_index = index_var.value
      total = max_decode_length
      if total is None:
        raise ValueError("decoding with a cache needs max_decode_length")
      query_positions = (cache_index + jnp.arange(length, dtype=jnp.int32))[None]
      key_positions = _default_positions(total)
      self_mask = (key_positions[:, None, :] <= query_positions[:, :, None])[:, None]
      cross_mask = encoder_valid[:, None, None, :]
      index_var.value = cache_index + length
    else:
      if decode:  # the call that creates the cache
        self.variable("cache", "cache_index", jnp.zeros, (), jnp.int32)
        self.variable("cache", "encoder_valid", lambda: encoder_input_tokens > 0)
      query_positions = key_positions = (
          _default_positions(length) if decoder_positions is None else decoder_positions)
      valid = (decoder_target_tokens > 0 if decoder_target_tokens is not None
               else jnp.ones_like(decoder_input_tokens, jnp.bool_))
      self_mask = (_attention_mask(valid, valid) & _causal_mask(length)
                   & _segment_mask(decoder_segment_ids, decoder_segment_ids))
      cross_mask = (_attention_mask(valid, encoder_input_tokens > 0)
                    & _segment_mask(decoder_segment_ids, encoder_segment_ids))
    position_bias = layers.RelativePositionBias(
        cfg.relative_attention_num_buckets, cfg.relative_attention_max_distance, cfg.num_heads,
        bidirectional=False, dtype=cfg.activation_dtype, name="relpos_bias")(
            query_positions, key_positions)

    y = self.shared_embedding(decoder_input_tokens)
    y = nn.Dropout(cfg.dropout_rate)(y, deterministic=deterministic)
    y = nn.with_logical_constraint(y, ("batch", "length", "embed"))
    y = _run_layers(DecoderLayer, cfg.num_decoder_layers, y, encoded, position_bias,
                    self_mask, cross_mask, cache_index, config=cfg, deterministic=deterministic,
                    decode=decode, max_decode_length=max_decode_length, lora=self.lora)
    y = layers.RMSNorm(cfg.layer_norm_epsilon, cfg.activation_dtype, name="decoder_norm")(y)
    y = nn.Dropout(cfg.dropout_rate)(y, deterministic=deterministic)
    if cfg.tie_word_embeddings:
      logits = self.shared_embedding.attend(y * cfg.d_model**-0.5)
    else:
      logits = layers.DenseGeneral(cfg.vocab_size, kernel_axes=("embed", "vocab"),
                                   kernel_init=layers.fan_in_init(), dtype=cfg.activation_dtype,
                                   name="logits_dense")(y)
    return nn.with_logical_constraint(logits, ("batch", "length", "vocab"))


class T5(nn.Module):
  """T5 encoder-decoder; `__call__` returns logits (batch, target length, vocab).

  `prompt_length` > 0 adds a soft prompt (encoder/prompt) and `lora` low-rank adapters:
  see flan_tune.model.peft."""

  config: T5Config
  prompt_length: int = 0
  lora: layers.Lora | None = None

  def setup(self):
    cfg = self.config
    self.token_embedder = layers.Embed(cfg.vocab_size, cfg.d_model, cfg.activation_dtype)
    self.encoder = Encoder(cfg, self.token_embedder, self.prompt_length, self.lora)
    self.decoder = Decoder(cfg, self.token_embedder, self.lora)

  def encode(self, encoder_input_tokens: Array, encoder_segment_ids: Array | None = None,
             encoder_positions: Array | None = None, *, enable_dropout: bool = True) -> Array:
    """Token ids (batch, length) -> encoder output (batch, length, d_model)."""
    return self.encoder(encoder_input_tokens, encoder_segment_ids, encoder_positions,
                        deterministic=not enable_dropout)

  def decode(self, encoded: Array | None, encoder_input_tokens: Array | None,
             decoder_input_tokens: Array, decoder_target_tokens: Array | None = None,
             encoder_segment_ids: Array | None = None, decoder_segment_ids: Array | None = None,
             decoder_positions: Array | None = None, *, enable_dropout: bool = True,
             decode: bool = False, max_decode_length: int | None = None) -> Array:
    """Decoder logits. Teacher forcing by default; with `decode=True` it reads and
    writes the "cache" collection (see flan_tune.model.inference)."""
    if self.prompt_length and encoder_input_tokens is not None:
      encoder_input_tokens = with_prompt_slots(encoder_input_tokens, self.prompt_length)
    return self.decoder(encoded, encoder_input_tokens, decoder_input_tokens,
                        decoder_target_tokens, encoder_segment_ids, decoder_segment_ids,
                        decoder_positions, deterministic=not enable_dropout, decode=decode,
                        max_decode_length=max_decode_length)

  def __call__(self, encoder_input_tokens: Array, decoder_input_tokens: Array,
               decoder_target_tokens: Array, encoder_segment_ids: Array | None = None,
               decoder_segment_ids: Array | None = None, encoder_positions: Array | None = None,
               decoder_positions: Array | None = None, *, enable_dropout: bool = True) -> Array:
    encoded = self.encode(encoder_input_tokens, encoder_segment_ids, encoder_positions,
                          enable_dropout=enable_dropout)
    return self.decode(encoded, encoder_input_tokens, decoder_input_tokens,
                       decoder_target_tokens, encoder_segment_ids, decoder_segment_ids,
                       decoder_positions, enable_dropout=enable_dropout)


def _uniform_prompt_init(key, shape, dtype=jnp.float32):
  """Lester et al.'s random initialisation, uniform in [-0.5, 0.5]."""
  return jax.random.uniform(key, shape, dtype, -0.5, 0.5)


def with_prompt_slots(tokens: Array, prompt_length: int) -> Array:
  """Encoder token ids with `prompt_length` non-padding slots in front, for the masks of a
  prompted encoder output."""
  return jnp.pad(tokens, ((0, 0), (prompt_length, 0)), constant_values=1)


def init_variables(model: T5, rng: Array, *, batch_size: int = 1, encoder_length: int = 1,
                   decoder_length: int = 1) -> PyTree:
  """{"params": ...} with nn.LogicallyPartitioned boxes (float32). Shapes do not depend
  on the dummy batch; wrap in jax.eval_shape for shapes and axes without memory."""
  encoder_tokens = jnp.ones((batch_size, encoder_length), jnp.int32)
  decoder_tokens = jnp.ones((batch_size, decoder_length), jnp.int32)
  return model.init({"params": rng}, encoder_tokens, decoder_tokens, decoder_tokens,
                    enable_dropout=False)


def abstract_variables(model: T5) -> PyTree:
  """init_variables as boxed jax.ShapeDtypeStructs: the layout and logical axes for free."""
  return jax.eval_shape(functools.partial(init_variables, model), jax.random.key(0))


def logical_axes(tree: PyTree) -> PyTree:
  """PartitionSpecs of logical axis names for a boxed params or variables tree (e.g. from
  init_variables or abstract_variables); map them to mesh axes with
  nn.logical_to_mesh_sharding(logical_axes(tree), mesh, rules)."""
  return nn.get_partition_spec(tree)


def unbox(tree: PyTree) -> PyTree:
  """Plain arrays from a boxed tree (a no-op on plain arrays)."""
  return nn.unbox(tree)


def _stack(*arrays):
  if all(isinstance(x, np.ndarray) for x in arrays):
    return np.stack(arrays)  # stay on the host, e.g. for a freshly imported checkpoint
  return jnp.stack(arrays)


def stack_layers(params: PyTree) -> PyTree:
  """Unscanned params (layers_0, layers_1, ...) -> scanned (one `layers`, leading axis)."""
  def convert(node):
    if not isinstance(node, dict):
      return node
    indexed = sorted((int(m.group(1)), key) for key in node if (m := _LAYER_KEY.match(key)))
    out = {key: convert(value) for key, value in node.items() if not _LAYER_KEY.match(key)}
    if indexed:
      if [i for i, _ in indexed] != list(range(len(indexed))):
        raise ValueError(f"layer keys are not 0..n-1: {[key for _, key in indexed]}")
      stacked = [node[key] for _, key in indexed]
      out["layers"] = jax.tree.map(_stack, *stacked)
    return out
  return convert(unbox(params))


def scanned_path(path: tuple[str, ...]) -> tuple[tuple[str, ...], int | None]:
  """Where an unscanned param path's array goes in the scanned layout: (path, layer index
  on the leading axis), or (path, None) outside the layers."""
  for position, key in enumerate(path):
    if match := _LAYER_KEY.match(key):
      return path[:position] + ("layers",) + path[position + 1:], int(match.group(1))
  return path, None


def unstack_layers(params: PyTree) -> PyTree:
  """Scanned params (one `layers` with a leading axis) -> layers_0, layers_1, ..."""
  def convert(node):
    if not isinstance(node, dict):
      return node
    out = {key: convert(value) for key, value in node.items() if key != "layers"}
    if "layers" in node:
      leaves = jax.tree.leaves(node["layers"])
      for index in range(leaves[0].shape[0]):
        out[f"layers_{index}"] = jax.tree.map(lambda x, i=index: x[i], node["layers"])
    return out
  return convert(unbox(params))
