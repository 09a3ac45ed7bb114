"""T5 building blocks (Flax linen, T5X style).

Every parameter is float32 and carries T5X's logical axis names through
`nn.with_logical_partitioning`; activations are cast to the configured dtype and carry
`nn.with_logical_constraint` names, so a trainer shards the model by rules alone. The
constraints are no-ops when no rules are set.

Attention logits and softmax are computed in float32 whatever the activation dtype, and
every matmul accumulates in float32 (`preferred_element_type`) before its result is cast
to the activation dtype: that is what bfloat16 hardware does anyway, and on CPUs with
AMX it is the only form XLA sends to the bfloat16 matrix units (bfloat16 -> bfloat16
dots ran at float32 speed, ~0.3 TFLOP/s against ~2 on a 2-core Sapphire Rapids VM).
"""

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
Initializer = Callable[..., Array]

# Written into masked attention logits; softmax then gives them weight exactly 0.
_MASKED_LOGIT = float(np.finfo(np.float32).min)

_ACTIVATION_FNS = {
    "relu": jax.nn.relu,
    "gelu": functools.partial(jax.nn.gelu, approximate=True),
    "gelu_exact": functools.partial(jax.nn.gelu, approximate=False),
    "silu": jax.nn.silu,
    "linear": lambda x: x,
}


def fan_in_init(scale: float = 1.0) -> Initializer:
  """Truncated normal with variance scale / fan_in (T5X's default kernel init)."""
  return nn.initializers.variance_scaling(scale, "fan_in", "truncated_normal")


def _as_tuple(value: int | Sequence[int]) -> tuple[int, ...]:
  return tuple(value) if isinstance(value, Sequence) else (value,)


class RMSNorm(nn.Module):
  """T5's layer norm: scale only, no mean subtraction, statistics in float32."""

  epsilon: float = 1e-6
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    scale = self.param("scale", nn.with_logical_partitioning(nn.initializers.ones, ("embed",)),
                       (x.shape[-1],), jnp.float32)
    x = x.astype(jnp.float32)
    variance = jnp.mean(jnp.square(x), axis=-1, keepdims=True)
    return (scale * (x * jax.lax.rsqrt(variance + self.epsilon))).astype(self.dtype)


class Embed(nn.Module):
  """Token embedding looked up by gather; `attend` gives logits against the same table."""

  num_embeddings: int
  features: int
  dtype: jnp.dtype = jnp.float32
  embedding_init: Initializer = nn.initializers.normal(stddev=1.0)

  def setup(self):
    self.embedding = self.param(
        "embedding", nn.with_logical_partitioning(self.embedding_init, ("vocab", "embed")),
        (self.num_embeddings, self.features), jnp.float32)

  def __call__(self, token_ids: Array) -> Array:
    return jnp.take(self.embedding, token_ids, axis=0).astype(self.dtype)

  def attend(self, query: Array) -> Array:
    """query (..., features) -> (..., num_embeddings): the tied output projection."""
    return jnp.einsum("...e,ve->...v", query.astype(self.dtype), self.embedding.astype(self.dtype),
                      preferred_element_type=jnp.float32).astype(self.dtype)


@dataclasses.dataclass(frozen=True)
class Lora:
  """Low-rank adapters on the projections named in `targets` (Hugging Face PEFT's T5 names:
  q, k, v, o, wi, wi_0, wi_1, wo): W x + B A dropout(x) * alpha / rank."""

  rank: int
  alpha: float
  dropout: float = 0.0
  targets: tuple[str, ...] = ("q", "v")


def lora_on(lora: Lora | None, name: str) -> Lora | None:
  """`lora` where it targets the projection `name`, else None."""
  return lora if lora is not None and name in lora.targets else None


def _lora_a_init(key, shape, dtype=jnp.float32):
  """PEFT's kaiming_uniform_(a=sqrt(5)) on A (rank, fan_in): uniform in +-1/sqrt(fan_in)."""
  bound = 1.0 / math.sqrt(shape[0])
  return jax.random.uniform(key, shape, dtype, -bound, bound)


class DenseGeneral(nn.Module):
  """A bias-free projection over `axis` to `features`, kernel stored 2-D as T5X does.

  The kernel is (prod(input dims), prod(features)) so q/k/v and out kernels are
  ("embed", "joined_kv") and ("joined_kv", "embed") and map one-to-one onto HF's Linear
  weights (transposed). With `lora`, adapters lora_a (in, rank) and lora_b (rank, out)
  take the kernel's logical axes on their outer sides."""

  features: int | tuple[int, ...]
  kernel_axes: tuple[str, str]
  axis: int | tuple[int, ...] = -1
  kernel_init: Initializer = fan_in_init()
  dtype: jnp.dtype = jnp.float32
  lora: Lora | None = None

  @nn.compact
  def __call__(self, x: Array, deterministic: bool = True) -> Array:
    features = _as_tuple(self.features)
    axis = tuple(a % x.ndim for a in _as_tuple(self.axis))
    if axis != tuple(range(x.ndim - len(axis), x.ndim)):
      raise ValueError(f"DenseGeneral contracts trailing axes only, got axis={self.axis}")
    rows, in_shape = x.shape[:x.ndim - len(axis)], x.shape[x.ndim - len(axis):]
    shape = (math.prod(in_shape), math.prod(features))
    kernel = self.param("kernel", nn.with_logical_partitioning(self.kernel_init, self.kernel_axes),
                        shape, jnp.float32)
    x = x.reshape(rows + (-1,))
    dtype = jnp.dtype(self.dtype)
    y = matmul(x, kernel, dtype)
    if self.lora is not None:
      lora_a = self.param("lora_a", nn.with_logical_partitioning(
          _lora_a_init, (self.kernel_axes[0], "lora_rank")), (shape[0], self.lora.rank),
          jnp.float32)
      lora_b = self.param("lora_b", nn.with_logical_partitioning(
          nn.initializers.zeros, ("lora_rank", self.kernel_axes[1])), (self.lora.rank, shape[1]),
          jnp.float32)
      dropped = nn.Dropout(self.lora.dropout)(x, deterministic=deterministic)
      update = matmul(matmul(dropped, lora_a, dtype), lora_b, dtype)
      y = y + (update * (self.lora.alpha / self.lora.rank)).astype(dtype)
    return y.reshape(rows + features)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def matmul(x: Array, kernel: Array, dtype: jnp.dtype) -> Array:
  """x (..., K) @ kernel (K, N) in `dtype`, accumulated in float32, cast to `dtype`.

  Differentiated by hand so that the backward matmuls also take `dtype` operands: plain
  autodiff hands them the float32 gradient of the float32 accumulator, and XLA then runs
  bfloat16 models' backward pass as float32 matmuls (on CPU 0.1 TFLOP/s against ~1.2
  through AMX). The gradient flowing back is cast to `dtype`, as bfloat16 training on
  TPUs keeps it; the kernel's gradient is float32. For float32 it is plain autodiff."""
  return jnp.dot(x.astype(dtype), kernel.astype(dtype),
                 preferred_element_type=jnp.float32).astype(dtype)


def _matmul_fwd(x, kernel, dtype):
  return matmul(x, kernel, dtype), (x, kernel)


def _matmul_bwd(dtype, residuals, grad):
  x, kernel = residuals
  grad = grad.astype(dtype)
  grad_x = jnp.dot(grad, kernel.astype(dtype).T, preferred_element_type=jnp.float32)
  x2, grad2 = x.astype(dtype).reshape(-1, x.shape[-1]), grad.reshape(-1, grad.shape[-1])
  grad_kernel = jnp.dot(x2.T, grad2, preferred_element_type=jnp.float32)
  return grad_x.astype(x.dtype), grad_kernel.astype(kernel.dtype)


matmul.defvjp(_matmul_fwd, _matmul_bwd)


@functools.cache
def _log_bucket_table(num_buckets: int, max_distance: int) -> np.ndarray:
  """Bucket of each distance 0..max_distance (one direction), exactly as Mesh TF / HF.

  Computed in float64 with a tiny epsilon so distances that land exactly on a bucket
  boundary (powers of two for the defaults) get the bucket float32 arithmetic in
  HF/Mesh TF gives them; the parity test checks every distance in [-300, 300]."""
  max_exact = num_buckets // 2
  distance = np.arange(max_distance + 1)
  with np.errstate(divide="ignore"):
    log_ratio = np.log(np.maximum(distance, 1) / max_exact) / math.log(max_distance / max_exact)
  large = max_exact + np.floor(log_ratio * (num_buckets - max_exact) + 1e-9).astype(np.int32)
  large = np.minimum(large, num_buckets - 1)
  return np.where(distance < max_exact, distance, large).astype(np.int32)


def relative_position_bucket(relative_position: Array, *, bidirectional: bool, num_buckets: int,
                             max_distance: int) -> Array:
  """T5's bucket of `key_position - query_position` (int array, any shape).

  Bidirectional (encoder): half the buckets for keys after the query. Causal (decoder):
  keys after the query all share bucket 0 (they are masked anyway). Half of each
  direction's buckets are exact distances, the other half logarithmic up to
  max_distance, beyond which all distances share the last bucket."""
  if bidirectional:
    num_buckets //= 2
    offset = jnp.where(relative_position > 0, num_buckets, 0)
    distance = jnp.abs(relative_position)
  else:
    offset = 0
    distance = jnp.maximum(-relative_position, 0)
  table = jnp.asarray(_log_bucket_table(num_buckets, max_distance))
  return offset + table[jnp.minimum(distance, max_distance)]


class RelativePositionBias(nn.Module):
  """One learned scalar per (bucket, head), computed once per stack and shared by layers."""

  num_buckets: int
  max_distance: int
  num_heads: int
  bidirectional: bool
  dtype: jnp.dtype = jnp.float32
  embedding_init: Initializer = nn.initializers.variance_scaling(1.0, "fan_avg", "uniform")

  @nn.compact
  def __call__(self, query_positions: Array, key_positions: Array) -> Array:
    """Positions (b, q) and (b, k), b the batch or 1 -> bias (b, heads, q, k)."""
    table = self.param(
        "rel_embedding",
        nn.with_logical_partitioning(self.embedding_init, ("heads", "relpos_buckets")),
        (self.num_heads, self.num_buckets), jnp.float32)
    buckets = relative_position_bucket(
        key_positions[:, None, :] - query_positions[:, :, None],
        bidirectional=self.bidirectional, num_buckets=self.num_buckets,
        max_distance=self.max_distance)
    return jnp.take(table, buckets, axis=1).transpose(1, 0, 2, 3).astype(self.dtype)


@jax.custom_vjp
def add_position_bias(logits: Array, bias: Array) -> Array:
  """logits (b, h, q, k) + bias (1 or b, h, q, k).

  The same sum as `+`; only the gradient of a batch-shared bias differs in form: it sums
  the logits' gradient over the batch with a dot against ones, because XLA's CPU reduce
  over a leading axis ran ~30x slower (47 ms against 1.6 ms for an 8 x 6 x 512 x 512
  gradient, 10% of a T5.1.1-small training step at 512 tokens)."""
  return logits + bias


def _add_position_bias_fwd(logits, bias):
  return logits + bias, bias


def _add_position_bias_bwd(bias, grad):
  if bias.shape[0] == grad.shape[0]:
    return grad, grad.astype(bias.dtype)
  ones = jnp.ones((grad.shape[0],), grad.dtype)
  return grad, jnp.einsum("b,b...->...", ones, grad)[None].astype(bias.dtype)


add_position_bias.defvjp(_add_position_bias_fwd, _add_position_bias_bwd)


class MultiHeadAttention(nn.Module):
  """T5 attention: no biases, no 1/sqrt(d_kv) scaling (folded into the query init).

  `cache` selects autoregressive decoding with a "cache" collection:
    "self": keys/values are written at `cache_index` into (batch, heads, max_length, d_kv)
      buffers and the queries attend to the whole buffer (the caller's mask hides the
      unwritten slots). The call that creates the buffers only creates them.
    "cross": keys/values of `inputs_kv` (the encoder output) are computed by the call
      that creates the cache and reused afterwards; `inputs_kv` may then be None.
  Cached keys/values are head-major, the layout the attention dots read: stored
  (batch, length, heads, d_kv), every decoding step would transpose every layer's whole
  cache (measured: 85% of a T5.1.1-small greedy step on CPU).
  """

  num_heads: int
  d_kv: int
  dropout_rate: float = 0.0
  dtype: jnp.dtype = jnp.float32
  lora: Lora | None = None

  @nn.compact
  def __call__(self, inputs_q: Array, inputs_kv: Array | None, position_bias: Array | None,
               mask: Array | None, *, deterministic: bool, cache: str | None = None,
               cache_index: Array | None = None, max_length: int | None = None) -> Array:
    lora = functools.partial(lora_on, self.lora)
    projection = functools.partial(DenseGeneral, features=(self.num_heads, self.d_kv),
                                   kernel_axes=("embed", "joined_kv"), dtype=self.dtype)
    d_model = inputs_q.shape[-1]
    query_init = fan_in_init(1.0 / self.d_kv)  # std (d_model * d_kv)**-0.5, as HF/T5X
    query = projection(kernel_init=query_init, lora=lora("q"), name="query")(
        inputs_q, deterministic)
    key_layer = projection(lora=lora("k"), name="key")
    value_layer = projection(lora=lora("v"), name="value")
    query = nn.with_logical_constraint(query, ("batch", "length", "heads", "kv"))
    if cache == "cross":
      key, value = self._cross_cache(key_layer, value_layer, inputs_kv)
    else:
      key, value = key_layer(inputs_kv, deterministic), value_layer(inputs_kv, deterministic)
      key = nn.with_logical_constraint(key, ("batch", "length", "heads", "kv"))
      value = nn.with_logical_constraint(value, ("batch", "length", "heads", "kv"))
    if cache == "self":
      key, value = self._self_cache(_head_major(key), _head_major(value), cache_index,
                                    max_length)
    # Cached keys/values are (batch, heads, length, d_kv), the others (batch, length, ...).
    kv = "bhkd" if cache else "bkhd"
    logits = jnp.einsum(f"bqhd,{kv}->bhqk", query, key, preferred_element_type=jnp.float32)
    if position_bias is not None:
      logits = add_position_bias(logits, position_bias.astype(jnp.float32))
    if mask is not None:
      logits = jnp.where(mask, logits, _MASKED_LOGIT)
    weights = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
    weights = nn.Dropout(self.dropout_rate)(weights, deterministic=deterministic)
    attended = jnp.einsum(f"bhqk,{kv}->bqhd", weights, value,
                          preferred_element_type=jnp.float32).astype(self.dtype)
    attended = nn.with_logical_constraint(attended, ("batch", "length", "heads", "kv"))
    return DenseGeneral(d_model, axis=(-2, -1), kernel_axes=("joined_kv", "embed"),
                        dtype=self.dtype, lora=lora("o"), name="out")(attended, deterministic)

  def _self_cache(self, key: Array, value: Array, cache_index: Array | None,
                  max_length: int | None) -> tuple[Array, Array]:
    initialized = self.has_variable("cache", "cached_key")
    batch, heads, _, d_kv = key.shape
    if not initialized and max_length is None:
      raise ValueError("creating a decoding cache needs max_decode_length")
    shape = (batch, heads, max_length, d_kv) if not initialized else None
    cached_key = self.variable("cache", "cached_key", jnp.zeros, shape, key.dtype)
    cached_value = self.variable("cache", "cached_value", jnp.zeros, shape, value.dtype)
    if not initialized:
      return key, value  # the creating call attends over its own tokens only
    if max_length is not None and cached_key.value.shape[2] != max_length:
      raise ValueError(f"max_decode_length {max_length} does not match the cache's length "
                       f"{cached_key.value.shape[2]}")
    start = (0, 0, cache_index, 0)
    cached_key.value = jax.lax.dynamic_update_slice(cached_key.value, key, start)
    cached_value.value = jax.lax.dynamic_update_slice(cached_value.value, value, start)
    return cached_key.value, cached_value.value

  def _cross_cache(self, key_layer: nn.Module, value_layer: nn.Module,
                   inputs_kv: Array | None) -> tuple[Array, Array]:
    if not self.has_variable("cache", "cached_key") and inputs_kv is None:
      raise ValueError("creating a decoding cache needs the encoder output")
    cached_key = self.variable("cache", "cached_key", lambda: _head_major(key_layer(inputs_kv)))
    cached_value = self.variable("cache", "cached_value",
                                 lambda: _head_major(value_layer(inputs_kv)))
    return cached_key.value, cached_value.value


def _head_major(x: Array) -> Array:
  """(batch, length, heads, d_kv) -> (batch, heads, length, d_kv), the cache layout."""
  return nn.with_logical_constraint(jnp.swapaxes(x, 1, 2), ("batch", "heads", "length", "kv"))


class MlpBlock(nn.Module):
  """T5 feed-forward: act(x wi) wo, or gated: prod_k act_k(x wi_k) wo (v1.1: gelu * linear)."""

  d_ff: int
  activations: tuple[str, ...] = ("relu",)
  dropout_rate: float = 0.0
  dtype: jnp.dtype = jnp.float32
  lora: Lora | None = None

  @nn.compact
  def __call__(self, x: Array, *, deterministic: bool) -> Array:
    lora = functools.partial(lora_on, self.lora)
    hidden = None
    for index, activation in enumerate(self.activations):
      name = "wi" if len(self.activations) == 1 else f"wi_{index}"
      projected = DenseGeneral(self.d_ff, kernel_axes=("embed", "mlp"), dtype=self.dtype,
                               lora=lora(name), name=name)(x, deterministic)
      projected = _ACTIVATION_FNS[activation](projected)
      hidden = projected if hidden is None else hidden * projected
    hidden = nn.with_logical_constraint(hidden, ("batch", "length", "mlp"))
    hidden = nn.Dropout(self.dropout_rate)(hidden, deterministic=deterministic)
    return DenseGeneral(x.shape[-1], kernel_axes=("mlp", "embed"), dtype=self.dtype,
                        lora=lora("wo"), name="wo")(hidden, deterministic)
