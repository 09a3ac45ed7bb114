"""Scoring and generation against transformers and naive loops; import-hf / export-hf."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

from flan_tune import cli
from flan_tune.model import T5, T5Config, decoding, init_variables, unbox
from flan_tune.model.hf import import_hf
from hf_models import save_hf_model

jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})
DECODING_VERSIONS = ("v1.0", "v1.1")
TINY = T5Config(vocab_size=64, d_model=32, num_heads=3, d_kv=10, d_ff=48, num_encoder_layers=2,
                num_decoder_layers=2, relative_attention_num_buckets=8,
                relative_attention_max_distance=16)
LENGTH = 10


def hf_model(version, directory):
  return save_hf_model(version, directory, dropout_rate=0.0)


@functools.cache
def imported(version, tmp_root):
  directory = f"{tmp_root}/{version}"
  model = hf_model(version, directory)
  return model, import_hf(directory)


@pytest.fixture(scope="module")
def tmp_root(tmp_path_factory):
  return str(tmp_path_factory.mktemp("hf"))


@functools.cache
def tiny_params():
  return unbox(jit(functools.partial(init_variables, T5(TINY)))(jax.random.key(1)))["params"]


def encoder_inputs(seed=0, lengths=(9, 5, 12, 3), width=12, vocab=64):
  rng = np.random.default_rng(seed)
  rows = np.zeros((len(lengths), width), np.int32)
  for row, length in enumerate(lengths):
    rows[row, :length - 1] = rng.integers(2, vocab, length - 1)
    rows[row, length - 1] = 1
  return rows


def common_token(tokens):
  """An id the model emits early in some rows: used as EOS so rows stop at different steps."""
  ids, counts = np.unique(np.asarray(tokens)[:, 1:4], return_counts=True)
  return int(ids[np.argmax(counts)])


def assert_stops_at_eos(tokens, eos_id, *, pad_emitted=False):
  """0 after the first EOS; before it, 0 only where the model may emit it (sampling)."""
  for row in np.asarray(tokens):
    hits = np.flatnonzero(row == eos_id)
    if hits.size:
      assert not row[hits[0] + 1:].any(), row
    assert pad_emitted or 0 not in row[:hits[0] if hits.size else len(row)], row


@functools.cache
def _jitted_score(model):
  return jit(functools.partial(decoding.score, model))


def score(model, params, inputs, tokens):
  return np.asarray(_jitted_score(model)(params, {
      "encoder_input_tokens": jnp.asarray(inputs), "decoder_target_tokens": jnp.asarray(tokens)}))


# --- against transformers ------------------------------------------------------------------

@pytest.mark.parametrize("version", DECODING_VERSIONS)
def test_greedy_equals_transformers_generate(version, tmp_root):
  hf, (config, params) = imported(version, tmp_root)
  model, inputs = T5(config), encoder_inputs(vocab=96)
  eos_id = common_token(decoding.generate(model, params, inputs, max_decode_length=LENGTH,
                                          eos_id=1).tokens)
  ours = np.asarray(decoding.generate(model, params, inputs, max_decode_length=LENGTH,
                                      eos_id=eos_id).tokens)
  with torch.no_grad():  # use_cache=False: transformers' cache assumes num_layers decoder layers
    theirs = hf.generate(input_ids=torch.from_numpy(inputs).long(),
                         attention_mask=torch.from_numpy(inputs > 0).long(), do_sample=False,
                         num_beams=1, max_new_tokens=LENGTH, min_length=0, eos_token_id=eos_id,
                         pad_token_id=0, decoder_start_token_id=0,
                         use_cache=False).numpy()
  assert (theirs[:, 0] == 0).all()
  theirs = theirs[:, 1:]
  np.testing.assert_array_equal(ours[:, :theirs.shape[1]], theirs)
  assert not ours[:, theirs.shape[1]:].any()
  stopped = (ours == eos_id).any(axis=1)
  assert stopped.any() and not stopped.all(), ours  # some rows end early, some run to LENGTH
  assert_stops_at_eos(ours, eos_id)


@pytest.mark.parametrize("version", DECODING_VERSIONS)
def test_score_equals_transformers_log_likelihood(version, tmp_root):
  hf, (config, params) = imported(version, tmp_root)
  inputs, targets = encoder_inputs(1, vocab=96), encoder_inputs(2, (4, 7, 2, 6), 8, vocab=96)
  decoder_inputs = np.pad(targets, ((0, 0), (1, 0)))[:, :-1]
  with torch.no_grad():
    logits = hf(input_ids=torch.from_numpy(inputs).long(),
                attention_mask=torch.from_numpy(inputs > 0).long(),
                decoder_input_ids=torch.from_numpy(decoder_inputs).long()).logits
  log_probs = torch.log_softmax(logits.double(), -1).numpy()
  per_token = np.take_along_axis(log_probs, targets[..., None].astype(np.int64), -1)[..., 0]
  expected = (per_token * (targets > 0)).sum(axis=1)
  np.testing.assert_allclose(score(T5(config), params, inputs, targets), expected, rtol=1e-4)


# --- algorithms ----------------------------------------------------------------------------

def naive_greedy(model, params, inputs, length, eos_id):
  """Reruns the whole decoder (no cache) for every new token."""
  forward = jit(lambda p, d: model.apply({"params": p}, jnp.asarray(inputs), d, jnp.ones_like(d),
                                         enable_dropout=False))
  tokens = np.zeros((len(inputs), length), np.int32)
  done = np.zeros(len(inputs), bool)
  for index in range(length):
    decoder_inputs = np.pad(tokens, ((0, 0), (1, 0)))[:, :-1]
    chosen = np.asarray(forward(params, decoder_inputs))[:, index].argmax(-1)
    tokens[:, index] = np.where(done, 0, chosen)
    done |= tokens[:, index] == eos_id
  return tokens


def test_cached_greedy_equals_a_naive_loop_and_its_scores_equal_score():
  model, params, inputs = T5(TINY), tiny_params(), encoder_inputs()
  eos_id = common_token(decoding.generate(model, params, inputs, max_decode_length=LENGTH).tokens)
  greedy = decoding.generate(model, params, inputs, max_decode_length=LENGTH, eos_id=eos_id)
  np.testing.assert_array_equal(greedy.tokens, naive_greedy(model, params, inputs, LENGTH,
                                                            eos_id))
  assert_stops_at_eos(greedy.tokens, eos_id)
  np.testing.assert_allclose(greedy.scores, score(model, params, inputs, greedy.tokens),
                             rtol=1e-5)


def test_beam_search_with_one_beam_equals_greedy():
  # With an EOS the model never emits, the single beam is the argmax path. (With one it may
  # differ: a finished short hypothesis can outscore the greedy continuation, as in T5X.)
  model, params, inputs = T5(TINY), tiny_params(), encoder_inputs(3)
  greedy = decoding.generate(model, params, inputs, max_decode_length=LENGTH,
                             eos_id=TINY.vocab_size)
  beam = decoding.generate(model, params, inputs, max_decode_length=LENGTH, method="beam",
                           num_beams=1, length_penalty_alpha=0.0, eos_id=TINY.vocab_size)
  np.testing.assert_array_equal(beam.tokens, greedy.tokens)
  np.testing.assert_allclose(beam.scores, greedy.scores, rtol=1e-5)


@pytest.mark.parametrize("seed", [0, 4])
def test_beam_search_scores_at_least_greedy(seed):
  model, params, inputs = T5(TINY), tiny_params(), encoder_inputs(seed)
  eos_id = common_token(decoding.generate(model, params, inputs, max_decode_length=LENGTH).tokens)
  greedy = decoding.generate(model, params, inputs, max_decode_length=LENGTH, eos_id=eos_id)
  beam = decoding.generate(model, params, inputs, max_decode_length=LENGTH, method="beam",
                           num_beams=4, length_penalty_alpha=0.0, eos_id=eos_id)
  assert_stops_at_eos(beam.tokens, eos_id)
  beam_scores = score(model, params, inputs, beam.tokens)
  np.testing.assert_allclose(beam.scores, beam_scores, rtol=1e-5)  # alpha 0: log-likelihood
  assert (beam_scores >= score(model, params, inputs, greedy.tokens) - 1e-5).all()
  # The brevity penalty favours longer hypotheses: never shorter than without it.
  long = decoding.generate(model, params, inputs, max_decode_length=LENGTH, method="beam",
                           num_beams=4, length_penalty_alpha=2.0, eos_id=eos_id)
  lengths = lambda tokens: (np.asarray(tokens) > 0).sum(axis=1)  # noqa: E731
  assert (lengths(long.tokens) >= lengths(beam.tokens)).all()


def test_sampling_is_deterministic_and_degenerates_to_greedy():
  model, params, inputs = T5(TINY), tiny_params(), encoder_inputs(5)
  sample = functools.partial(decoding.generate, model, params, inputs,
                             max_decode_length=LENGTH, method="sample")
  greedy = decoding.generate(model, params, inputs, max_decode_length=LENGTH).tokens
  first = sample(rng=jax.random.key(7)).tokens
  np.testing.assert_array_equal(first, sample(rng=jax.random.key(7)).tokens)
  assert not np.array_equal(first, sample(rng=jax.random.key(8)).tokens)
  assert not np.array_equal(first, greedy)
  np.testing.assert_array_equal(sample(rng=jax.random.key(7), temperature=1e-4).tokens, greedy)
  np.testing.assert_array_equal(sample(rng=jax.random.key(9), top_k=1).tokens, greedy)
  top3 = sample(rng=jax.random.key(7), top_k=3, eos_id=common_token(first))
  assert_stops_at_eos(top3.tokens, common_token(first), pad_emitted=True)


def test_bad_arguments_are_named():
  model, params, inputs = T5(TINY), tiny_params(), encoder_inputs()
  for kwargs, message in ((dict(method="nucleus"), "method"), (dict(method="sample"), "rng"),
                          (dict(max_decode_length=0), "max_decode_length"),
                          (dict(top_k=-1), "top_k")):
    kwargs = {"max_decode_length": LENGTH, **kwargs}
    with pytest.raises(ValueError, match=message):
      decoding.generate(model, params, inputs, **kwargs)


# --- import-hf / export-hf -----------------------------------------------------------------

def test_import_and_export_commands_round_trip_through_transformers(tmp_path, capsys):
  hf = hf_model("v1.1", tmp_path / "hf")
  (tmp_path / "hf" / "spiece.model").write_bytes(b"not really sentencepiece")
  assert cli.main(["import-hf", str(tmp_path / "hf"), str(tmp_path / "ours")]) == 0
  assert (tmp_path / "ours" / "spiece.model").is_file()
  assert cli.main(["export-hf", str(tmp_path / "ours"), str(tmp_path / "back")]) == 0
  assert (tmp_path / "back" / "spiece.model").read_bytes() == b"not really sentencepiece"
  reloaded = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path / "back").eval()
  inputs = torch.from_numpy(encoder_inputs(vocab=96)).long()
  decoder_inputs = torch.from_numpy(encoder_inputs(1, (3, 6, 2, 5), 6, vocab=96)).long()
  with torch.no_grad():
    expected, actual = (m(input_ids=inputs, attention_mask=(inputs > 0).long(),
                          decoder_input_ids=decoder_inputs).logits for m in (hf, reloaded))
  np.testing.assert_allclose(actual.numpy(), expected.numpy(), atol=1e-5, rtol=1e-5)

  assert cli.main(["import-hf", str(tmp_path / "hf"), str(tmp_path / "ours")]) == 2
  assert "already holds a model" in capsys.readouterr().err
  assert cli.main(["export-hf", str(tmp_path / "nowhere"), str(tmp_path / "x")]) == 2
  assert "nowhere: model directory not found" in capsys.readouterr().err
  assert cli.main(["export-hf", str(tmp_path / "hf"), str(tmp_path / "x")]) == 2
  assert "params: directory not found" in capsys.readouterr().err
