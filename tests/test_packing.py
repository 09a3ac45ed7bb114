"""Best-fit packing (flan_tune.training.packing): intact examples, seqio's features, density."""

import numpy as np
import pytest
import seqio
import tensorflow as tf

import flan_tune_tasks.offline  # noqa: F401  (registers the offline mixtures)
from flan_tune.errors import FlanTuneError
from flan_tune.mixtures import mixture_rates
from flan_tune.training import packing, tfdata_input
from flan_tune.training.input_pipeline import TrainInput, make_dataset

LENGTHS = {"inputs": 256, "targets": 64}  # the demo's
SIGNATURE = {"inputs": tf.TensorSpec([None], tf.int32),
             "targets": tf.TensorSpec([None], tf.int32)}


@pytest.fixture(scope="module")
def examples():
  """The demo's fine-tuning data, unpacked: 400 examples of every 8th member of
  flan_offline_no_nli at its rates (all 156 members take ~30 s to start; this, ~4 s).
  tools/bench_pipeline.py measures the whole mixture."""
  rates = sorted(mixture_rates("flan_offline_no_nli").items())
  ds = seqio.Mixture("flan_offline_no_nli_every_8th", rates[::8]).get_dataset(
      LENGTHS, split="train", shuffle=False, seed=0, num_epochs=None)
  return [{"inputs": ex["inputs"][:256], "targets": ex["targets"][:64]}
          for ex in ds.take(400).as_numpy_iterator()]


def as_dataset(examples):
  return tf.data.Dataset.from_generator(
      lambda: ({"inputs": e["inputs"], "targets": e["targets"]} for e in examples),
      output_signature=SIGNATURE)


def unpack(rows):
  """(inputs, targets) of every segment, checking each row's features against each other."""
  out = []
  for row in rows:
    n = int(row["encoder_segment_ids"].max())
    assert int(row["decoder_segment_ids"].max()) == n
    for feature, prefix in (("inputs", "encoder"), ("targets", "decoder")):
      seg = row[f"{prefix}_segment_ids"]
      used = int((seg != 0).sum())
      assert (seg[used:] == 0).all() and (np.diff(seg[:used]) >= 0).all()  # contiguous
      assert (row[f"{prefix}_positions"][used:] == 0).all()
    dec, dec_seg = row["decoder_target_tokens"], row["decoder_segment_ids"]
    np.testing.assert_array_equal(row["decoder_loss_weights"], (dec != 0).astype(np.int32))
    for s in range(1, n + 1):
      pieces = []
      for prefix, tokens in (("encoder", "encoder_input_tokens"),
                             ("decoder", "decoder_target_tokens")):
        at = row[f"{prefix}_segment_ids"] == s
        np.testing.assert_array_equal(row[f"{prefix}_positions"][at], np.arange(at.sum()))
        pieces.append(row[tokens][at])
      at = dec_seg == s
      shifted = np.concatenate([[0], pieces[1][:-1]]) if at.any() else pieces[1]
      np.testing.assert_array_equal(row["decoder_input_tokens"][at], shifted)
      out.append(tuple(pieces))
    assert (row["decoder_input_tokens"][dec_seg == 0] == 0).all()
  return out


def key(pair):
  return (pair[0].tobytes(), pair[1].tobytes())


def test_every_example_appears_once_intact(examples):
  rows = list(packing.pack_examples(examples, LENGTHS))
  assert all(r["encoder_input_tokens"].shape == (256,) and
             r["decoder_target_tokens"].shape == (64,) for r in rows)
  assert all(v.dtype == np.int32 for r in rows for v in r.values())
  assert sorted(map(key, unpack(rows))) == sorted(
      key((e["inputs"], e["targets"])) for e in examples)
  assert len(rows) < 0.8 * len(examples)  # and rows do hold several examples


def test_pool_of_one_is_seqios_next_fit(examples):
  """With one open row best fit is next fit: exactly seqio's rows, features and dtypes
  (seqio restarts its packing every max(lengths) examples, so take fewer)."""
  ds = as_dataset(examples[:250])
  ours = tfdata_input.pack_dataset(ds, LENGTHS, pool_size=1)
  theirs = seqio.EncDecFeatureConverter(pack=True)(ds, LENGTHS)
  assert ours.element_spec == theirs.element_spec
  ours, theirs = list(ours.as_numpy_iterator()), list(theirs.as_numpy_iterator())
  assert len(ours) == len(theirs) < 200
  for a, b in zip(ours, theirs):
    for name in b:
      np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_one_example_per_row_matches_seqio_with_the_default_pool():
  """Examples that fill a row leave at once, in order, as seqio's do; overlong ones are
  trimmed first (seqio's converter refuses them: tasks trim)."""
  rng = np.random.default_rng(0)
  examples = [{"inputs": rng.integers(2, 100, 259, dtype=np.int32),
               "targets": rng.integers(2, 100, 1 + i, dtype=np.int32)} for i in range(70)]
  ours = list(tfdata_input.pack_dataset(as_dataset(examples), LENGTHS).as_numpy_iterator())
  trimmed = [{"inputs": e["inputs"][:256], "targets": e["targets"][:64]} for e in examples]
  theirs = list(seqio.EncDecFeatureConverter(pack=True)(as_dataset(trimmed), LENGTHS)
                .as_numpy_iterator())
  assert len(ours) == len(theirs) == 70
  for a, b in zip(ours, theirs):
    for name in b:
      np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_rows_respect_both_lengths():
  packer = packing.BestFitPacker({"inputs": 8, "targets": 4}, pool_size=4)
  rows = []
  for a, b in [(5, 1), (3, 3), (2, 1), (1, 1), (4, 2), (6, 1), (1, 3)]:
    rows += packer.add(np.full(a, 7, np.int32), np.full(b, 9, np.int32))
  rows += packer.flush()
  assert sorted((len(i), len(t)) for i, t in unpack(rows)) == sorted(
      [(5, 1), (3, 3), (2, 1), (1, 1), (4, 2), (6, 1), (1, 3)])
  # (5,1)+(3,3) fill the inputs exactly and leave at once; the targets bound (1,3).
  assert [int(r["encoder_segment_ids"].max()) for r in rows][0] == 2
  with pytest.raises(ValueError, match="longer than the rows"):
    packer.add(np.ones(9, np.int32), np.ones(1, np.int32))


def test_same_stream_same_rows(examples):
  ds = tfdata_input.pack_dataset(as_dataset(examples[:150]), LENGTHS)
  first, again = list(ds.as_numpy_iterator()), list(ds.as_numpy_iterator())
  assert len(first) == len(again)
  for a, b in zip(first, again):
    for name in a:
      np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_efficiency_at_the_demos_lengths(examples):
  """>= 90% of the fewest rows possible, in steady state (rows the pool emits, not the
  ones flushed at the end of this finite sample); seqio's next fit is well below."""
  def steady(pool_size):
    packer = packing.BestFitPacker(LENGTHS, pool_size)
    return [row for e in examples for row in packer.add(e["inputs"], e["targets"])]
  best_fit, next_fit = packing.packing_stats(steady(32)), packing.packing_stats(steady(1))
  assert best_fit["efficiency"] >= 0.9, best_fit
  assert next_fit["efficiency"] < best_fit["efficiency"] - 0.1, next_fit
  assert best_fit["efficiency"] == pytest.approx(best_fit["inputs_fill"])  # inputs bind


def test_train_input_packer_option():
  cfg = TrainInput(mixture_or_task_name="flan_offline_translation_eval",
                   task_feature_lengths={"inputs": 128, "targets": 32}, batch_size=4)
  seqio_cfg = TrainInput(**{**cfg.__dict__, "packer": "seqio"})
  assert make_dataset(cfg).element_spec == make_dataset(seqio_cfg).element_spec
  # seqio's packing and no packing keep the fingerprints saved before `packer` existed.
  assert cfg.fingerprint() != seqio_cfg.fingerprint()
  unpacked = [TrainInput(**{**cfg.__dict__, "pack": False, "packer": p}) for p in
              packing.PACKERS]
  assert unpacked[0].fingerprint() == unpacked[1].fingerprint()
  with pytest.raises(FlanTuneError, match="packer='first_fit' must be one of"):
    TrainInput(packer="first_fit")
