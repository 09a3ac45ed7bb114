"""Incremental decoding on top of `T5`: encode once, then one decoder step at a time.

The decoding algorithms (greedy, beam, sampling) build on three functions; each is pure
(no hidden state) and jit-able with the model bound, e.g.
`step = jax.jit(functools.partial(decode_step, model))`.

  (a) encode once
        encoded = encode(model, params, encoder_input_tokens)     # (B, L_enc, d_model)
  (b) create the cache for batch B and at most L decoder tokens
        cache = init_cache(model, params, encoded, encoder_input_tokens, L)
      This computes every layer's cross-attention keys/values from `encoded` once and
      stores them with the encoder padding mask; the self-attention buffers start empty
      and the position (cache_index) at 0. `encoded` is not needed after this.
  (c) one step: feed the previous token of every row, get next-token logits
        logits, cache = decode_step(model, params, cache, token_ids)   # (B,) -> (B, V)
      The first token is 0 (T5's decoder start id). Step t writes slot t and attends to
      slots 0..t, with the relative bias of position t, so the logits equal those of a
      teacher-forced `T5.decode` at position t. (B, T) token ids advance T positions at
      once and return (B, T, V) logits (e.g. to force a prefix). Never step past L.

Cache layout: a dict pytree (the "cache" collection). Every array has the batch on axis 0,
except the scalar `decoder/cache_index` (shared by all rows). So expanding a batch for
beam search or reordering beams is one tree map:

        cache = map_cache_batch(lambda x: jnp.repeat(x, beams, axis=0), cache)
        cache = map_cache_batch(lambda x: x[beam_indices], cache)

Expanding the cache is cheaper than expanding `encoded` before (b). Logits come in the
model's activation dtype; cast to float32 before log_softmax for bfloat16 models.
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from flan_tune.model.network import T5

Array = jax.Array
PyTree = Any


def encode(model: T5, params: PyTree, encoder_input_tokens: Array,
           encoder_segment_ids: Array | None = None,
           encoder_positions: Array | None = None) -> Array:
  """Encoder output (B, L_enc, d_model), dropout off."""
  return model.apply({"params": params}, encoder_input_tokens, encoder_segment_ids,
                     encoder_positions, enable_dropout=False, method=T5.encode)


def init_cache(model: T5, params: PyTree, encoded: Array, encoder_input_tokens: Array,
               max_decode_length: int) -> PyTree:
  """A decoding cache for len(encoded) rows and at most max_decode_length tokens."""
  start = jnp.zeros((encoded.shape[0], 1), jnp.int32)
  _, variables = model.apply(
      {"params": params}, encoded, encoder_input_tokens, start, enable_dropout=False,
      decode=True, max_decode_length=max_decode_length, mutable=["cache"], method=T5.decode)
  return variables["cache"]


def decode_step(model: T5, params: PyTree, cache: PyTree,
                token_ids: Array) -> tuple[Array, PyTree]:
  """Logits for the next position(s) and the advanced cache.

  token_ids: (B,) -> logits (B, V); or (B, T) -> (B, T, V)."""
  single = token_ids.ndim == 1
  tokens = token_ids[:, None] if single else token_ids
  logits, variables = model.apply(
      {"params": params, "cache": cache}, None, None, tokens, enable_dropout=False,
      decode=True, max_decode_length=cache_length(cache), mutable=["cache"], method=T5.decode)
  return (logits[:, 0] if single else logits), variables["cache"]


def cache_length(cache: PyTree) -> int:
  """The L the cache was created for (its self-attention buffers are (..., heads, L, d_kv))."""
  for path, leaf in jax.tree_util.tree_leaves_with_path(cache):
    names = [getattr(entry, "key", None) for entry in path]
    if "self_attention" in names and names[-1] == "cached_key":
      return leaf.shape[-2]
  raise ValueError("not a decoding cache: no self_attention/cached_key in it")


def map_cache_batch(fn: Callable[[Array], Array], cache: PyTree) -> PyTree:
  """Applies fn to every batch-major cache array (all but the scalar cache_index)."""
  return jax.tree.map(lambda x: fn(x) if jnp.ndim(x) else x, cache)
