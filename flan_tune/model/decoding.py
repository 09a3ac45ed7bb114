"""Scoring and generation (greedy, beam, sampling) with T5X semantics, on the KV cache.

`score` gives each row's log-likelihood of its targets (rank classification over answer
options). `generate` encodes once, builds the cache (flan_tune.model.inference) and runs one
decoder step per token in a `jax.lax.while_loop` that stops as soon as every row is done, so
a call compiles once per (config, shapes, method) and never pays for steps it does not need.

Conventions (T5): the decoder starts from id 0; rows are padded with 0 after their EOS;
a row that has not emitted EOS after max_decode_length tokens is returned truncated.
"""

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from flan_tune.model import inference
from flan_tune.model.network import T5

Array = jax.Array
PyTree = Any

METHODS = ("greedy", "beam", "sample")
# Large but finite, as in T5X: -inf would give nan in (-inf) - (-inf) and 0 * inf.
NEG_INF = -1.0e7


class Generation(NamedTuple):
  """tokens (B, L) int32, 0 after EOS; scores (B,) float32: the log-likelihood of the
  tokens (EOS included) for greedy and sampling, and for beam search the beam score, the
  log-likelihood divided by the brevity penalty (the log-likelihood itself when alpha=0)."""
  tokens: Array
  scores: Array


def score(model: T5, params: PyTree, batch: dict[str, Array]) -> Array:
  """Per-row log-likelihood (B,) float32 of decoder_target_tokens, summed over ids > 0.

  Rows are examples (unpacked). decoder_input_tokens defaults to the targets shifted right
  behind the start id 0. Pure: jit with the model bound or static."""
  targets = batch["decoder_target_tokens"]
  inputs = batch.get("decoder_input_tokens")
  if inputs is None:
    inputs = jnp.pad(targets, ((0, 0), (1, 0)))[:, :-1]
  logits = model.apply({"params": params}, batch["encoder_input_tokens"], inputs, targets,
                       enable_dropout=False)
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  token_log_probs = jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
  return jnp.sum(jnp.where(targets > 0, token_log_probs, 0.0), axis=-1)


def brevity_penalty(length: Array | int, alpha: Array | float) -> Array:
  """T5X's (GNMT's) length normalization ((5 + length) / 6) ** alpha."""
  return ((5.0 + jnp.asarray(length, jnp.float32)) / 6.0) ** alpha


def generate(model: T5, params: PyTree, encoder_input_tokens: Array, *,
             max_decode_length: int, method: str = "greedy", num_beams: int = 4,
             length_penalty_alpha: float = 0.6, temperature: float = 1.0, top_k: int = 0,
             rng: Array | None = None, eos_id: int = 1) -> Generation:
  """Decodes up to max_decode_length tokens per row of encoder_input_tokens (B, L_enc).

  greedy: argmax each step. beam: num_beams beams, the best finished one by beam score
  (T5X brevity penalty with length_penalty_alpha). sample: softmax(logits / temperature),
  keeping only the top_k ids when top_k > 0; needs rng. Compiled once per configuration
  and shape; temperature, alpha and eos_id are traced: changing them does not recompile."""
  if method not in METHODS:
    raise ValueError(f"generate: method must be one of {METHODS}, got {method!r}")
  if max_decode_length < 1:
    raise ValueError(f"generate: max_decode_length must be >= 1, got {max_decode_length}")
  if method == "beam" and num_beams < 1:
    raise ValueError(f"generate: num_beams must be >= 1, got {num_beams}")
  if method == "sample":
    if rng is None:
      raise ValueError("generate: method='sample' needs rng (a jax.random key)")
    if temperature <= 0:
      raise ValueError(f"generate: temperature must be > 0, got {temperature}")
  if top_k < 0:
    raise ValueError(f"generate: top_k must be >= 0 (0: no cut), got {top_k}")
  rng = jax.random.key(0) if rng is None else rng
  return _generate(model, params, jnp.asarray(encoder_input_tokens, jnp.int32), rng,
                   jnp.float32(temperature), jnp.float32(length_penalty_alpha),
                   jnp.int32(eos_id), max_decode_length=max_decode_length, method=method,
                   num_beams=num_beams if method == "beam" else 1,
                   top_k=top_k if method == "sample" else 0)


@functools.partial(jax.jit, static_argnames=("model", "max_decode_length", "method",
                                             "num_beams", "top_k"))
def _generate(model, params, encoder_input_tokens, rng, temperature, alpha, eos_id, *,
              max_decode_length, method, num_beams, top_k) -> Generation:
  encoded = inference.encode(model, params, encoder_input_tokens)
  cache = inference.init_cache(model, params, encoded, encoder_input_tokens,
                               max_decode_length)
  step = functools.partial(inference.decode_step, model, params)
  if method == "beam":
    return _beam_search(step, cache, encoder_input_tokens.shape[0], max_decode_length,
                        num_beams, alpha, eos_id)
  if method == "greedy":
    choose = lambda logits, _: jnp.argmax(logits, axis=-1)  # noqa: E731
  else:
    choose = functools.partial(_sample, temperature=temperature, top_k=top_k, rng=rng)
  return _sequential(step, cache, encoder_input_tokens.shape[0], max_decode_length, choose,
                     eos_id)


def _sample(logits: Array, index: Array, *, temperature: Array, top_k: int,
            rng: Array) -> Array:
  """One id per row from softmax(logits / temperature), restricted to the top_k ids."""
  logits = logits.astype(jnp.float32) / temperature
  if top_k:
    kth_largest = jax.lax.top_k(logits, top_k)[0][:, -1:]
    logits = jnp.where(logits < kth_largest, NEG_INF * 1e3, logits)
  return jax.random.categorical(jax.random.fold_in(rng, index), logits, axis=-1)


def _sequential(step, cache, batch_size, length, choose, eos_id) -> Generation:
  """Greedy or sampled decoding: one token per row per step until every row has EOS."""
  def cond(state):
    index, _, _, _, done, _ = state
    return (index < length) & ~jnp.all(done)

  def body(state):
    index, cache, previous, tokens, done, scores = state
    logits, cache = step(cache, previous)
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    chosen = choose(logits, index).astype(jnp.int32)
    chosen_log_prob = jnp.take_along_axis(log_probs, chosen[:, None], axis=-1)[:, 0]
    scores = scores + jnp.where(done, 0.0, chosen_log_prob)
    chosen = jnp.where(done, 0, chosen)
    tokens = tokens.at[:, index].set(chosen)
    return index + 1, cache, chosen, tokens, done | (chosen == eos_id), scores

  state = (jnp.int32(0), cache, jnp.zeros((batch_size,), jnp.int32),
           jnp.zeros((batch_size, length), jnp.int32), jnp.zeros((batch_size,), jnp.bool_),
           jnp.zeros((batch_size,), jnp.float32))
  _, _, _, tokens, _, scores = jax.lax.while_loop(cond, body, state)
  return Generation(tokens, scores)


def _gather_beams(x: Array, beams: Array) -> Array:
  """x (B, K, ...) indexed per row by beams (B, N) -> (B, N, ...)."""
  return jnp.take_along_axis(x, beams.reshape(beams.shape + (1,) * (x.ndim - 2)), axis=1)


def _beam_search(step, cache, batch_size, length, beams, alpha, eos_id) -> Generation:
  """T5X's beam search: keep `beams` live (no EOS) and `beams` finished sequences per row;
  finished ones are ranked by log-likelihood / brevity_penalty(length incl. EOS, alpha).

  A row is done once its best finished score beats the best score any live beam could
  still reach (its log-likelihood only falls; the penalty is largest at full length)."""
  cache = inference.map_cache_batch(lambda x: jnp.repeat(x, beams, axis=0), cache)
  max_penalty = brevity_penalty(length, alpha)

  def cond(state):
    index, _, _, _, live_log_probs, _, finished_scores, finished = state
    best_live = live_log_probs[:, 0] / max_penalty
    done = finished[:, 0] & (finished_scores[:, 0] > best_live)
    return (index < length) & ~jnp.all(done)

  def body(state):
    (index, cache, previous, live_seqs, live_log_probs, finished_seqs, finished_scores,
     finished) = state
    logits, cache = step(cache, previous.reshape(-1))
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    vocab = log_probs.shape[-1]
    candidates = live_log_probs[..., None] + log_probs.reshape(batch_size, beams, vocab)
    # 2K candidates: at most K end in EOS (one per beam), so K live ones always remain.
    top_log_probs, top_ids = jax.lax.top_k(candidates.reshape(batch_size, beams * vocab),
                                           2 * beams)
    parent, token = top_ids // vocab, top_ids % vocab
    seqs = _gather_beams(live_seqs, parent).at[:, :, index].set(token)
    # Candidates of dead beams (only possible when vocab < 2K) never count as finished.
    is_eos = (token == eos_id) & (top_log_probs > NEG_INF / 2)

    live_log_probs, keep = jax.lax.top_k(jnp.where(is_eos, NEG_INF, top_log_probs), beams)
    live_seqs, previous = _gather_beams(seqs, keep), _gather_beams(token, keep)
    rows = (jnp.arange(batch_size)[:, None] * beams + _gather_beams(parent, keep)).reshape(-1)
    cache = inference.map_cache_batch(lambda x: x[rows], cache)

    new_scores = jnp.where(is_eos, top_log_probs / brevity_penalty(index + 1, alpha), NEG_INF)
    all_scores = jnp.concatenate([finished_scores, new_scores], axis=1)
    finished_scores, keep = jax.lax.top_k(all_scores, beams)
    finished_seqs = _gather_beams(jnp.concatenate([finished_seqs, seqs], axis=1), keep)
    finished = _gather_beams(jnp.concatenate([finished, is_eos], axis=1), keep)
    return (index + 1, cache, previous, live_seqs, live_log_probs, finished_seqs,
            finished_scores, finished)

  # Only beam 0 is live at first, so the first step expands one beam, not K copies.
  live_log_probs = jnp.tile(jnp.where(jnp.arange(beams) == 0, 0.0, NEG_INF), (batch_size, 1))
  seqs = jnp.zeros((batch_size, beams, length), jnp.int32)
  state = (jnp.int32(0), cache, jnp.zeros((batch_size, beams), jnp.int32), seqs,
           live_log_probs, seqs,
           jnp.full((batch_size, beams), NEG_INF, jnp.float32),
           jnp.zeros((batch_size, beams), jnp.bool_))
  _, _, _, live_seqs, live_log_probs, finished_seqs, finished_scores, finished = (
      jax.lax.while_loop(cond, body, state))
  # A row with no finished beam returns its best live (truncated) one, as T5X does.
  any_finished = finished[:, 0]
  tokens = jnp.where(any_finished[:, None], finished_seqs[:, 0], live_seqs[:, 0])
  scores = jnp.where(any_finished, finished_scores[:, 0], live_log_probs[:, 0] / max_penalty)
  return Generation(tokens, scores)
