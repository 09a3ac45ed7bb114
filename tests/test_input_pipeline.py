"""Training input (flan_tune.training.input_pipeline): determinism, host shards, resume."""

import numpy as np
import pytest

import tasks.offline  # noqa: F401  (registers the offline mixtures)
from flan_tune.errors import CheckpointError, MixtureError, PartitioningError
from flan_tune.training.input_pipeline import DataIterator, TrainInput, make_dataset

# A 4-task mixture: small enough that each pipeline starts in a few seconds.
CFG = TrainInput(mixture_or_task_name="flan_offline_translation_eval",
                 task_feature_lengths={"inputs": 128, "targets": 32}, batch_size=4, seed=3)


def take(ds_or_iterator, n):
  iterator = ds_or_iterator.as_numpy_iterator() if hasattr(ds_or_iterator, "take") else (
      ds_or_iterator)
  return [next(iterator) for _ in range(n)]


def assert_same(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert x.keys() == y.keys()
    for key in x:
      np.testing.assert_array_equal(x[key], y[key], err_msg=key)


@pytest.fixture(scope="module")
def resumed():
  """8 batches of an uninterrupted run, and 3 from an iterator restored after 5."""
  iterator = DataIterator(CFG)
  first = take(iterator, 5)
  state = iterator.state()
  rest = take(iterator, 3)
  fresh = DataIterator(CFG)
  fresh.restore(state)
  return first + rest, state, take(fresh, 3), fresh


def test_packed_batches_have_local_batch_rows(resumed):
  batches, *_ = resumed
  batch = batches[0]
  assert batch["encoder_input_tokens"].shape == (4, 128)
  assert batch["decoder_target_tokens"].shape == (4, 32)
  assert {"encoder_segment_ids", "decoder_positions"} <= batch.keys()  # packed features


def test_same_seed_same_batches_other_seed_differs(resumed):
  batches, *_ = resumed
  assert_same(take(make_dataset(CFG), 8), batches)
  other = take(make_dataset(TrainInput(**{**CFG.__dict__, "seed": 4})), 2)
  assert not np.array_equal(other[0]["encoder_input_tokens"],
                            batches[0]["encoder_input_tokens"])


def test_restored_iterator_continues_exactly(resumed):
  batches, state, continued, fresh = resumed
  assert state["batches_consumed"] == 5 and fresh.batches_consumed == 8
  assert_same(continued, batches[5:])


def test_hosts_read_disjoint_shards():
  cfg = TrainInput(**{**CFG.__dict__, "pack": False, "shuffle": False})
  rows = []
  for host in (0, 1):
    batches = take(make_dataset(cfg, process_index=host, process_count=2), 6)
    assert all(b["encoder_input_tokens"].shape == (2, 128) for b in batches)
    rows.append({b["encoder_input_tokens"][i].tobytes() for b in batches for i in range(2)})
  assert len(rows[0]) > 6 and len(rows[1]) > 6
  assert not rows[0] & rows[1]


def test_global_batches_do_not_depend_on_the_process_count():
  """With num_shards fixed, one process reading both shards yields exactly the rows two
  processes yield together (host 0's, then host 1's), so its losses are theirs and its
  position resumes on either."""
  cfg = TrainInput(**{**CFG.__dict__, "num_shards": 2})
  alone = take(make_dataset(cfg), 3)
  hosts = [take(make_dataset(cfg, process_index=i, process_count=2), 3) for i in (0, 1)]
  joined = [{key: np.concatenate([h0[key], h1[key]]) for key in h0}
            for h0, h1 in zip(*hosts)]
  assert_same(alone, joined)
  assert DataIterator(cfg).fingerprint == DataIterator(cfg, 1, 2).fingerprint


def test_state_from_another_config_is_refused(resumed):
  _, state, *_ = resumed
  other = DataIterator(TrainInput(**{**CFG.__dict__, "seed": 4}))
  with pytest.raises(CheckpointError, match="different input configuration"):
    other.restore(state)


def test_bad_batch_size_and_unknown_name():
  with pytest.raises(PartitioningError, match=r"batch_size=5 .* 2 data shards \(2 processes"):
    make_dataset(TrainInput(**{**CFG.__dict__, "batch_size": 5}), 0, 2)
  with pytest.raises(MixtureError, match="did you mean flan_offline_translation_eval"):
    make_dataset(TrainInput(**{**CFG.__dict__,
                               "mixture_or_task_name": "flan_offline_translaton_eval"}))
