"""Training input (flan_tune.training.input_pipeline): the Grain path's determinism, host
shards, O(1) exact resume, worker processes and errors; the tf.data path's resume."""

import json
import logging
import time

import numpy as np
import pytest
import seqio

import flan_tune_tasks.offline  # noqa: F401  (registers the offline mixtures)
from conftest import write_jsonl
from flan_tune.errors import CheckpointError, FlanTuneError, MixtureError, PartitioningError
from flan_tune.mixtures import register_mixture, unregister_mixture
from flan_tune.tasks import JsonlSource, Template, register_task, unregister
from flan_tune.tasks.vocabularies import default_vocabulary
from flan_tune.training import packing
from flan_tune.training.input_pipeline import DataIterator, TrainInput, make_dataset

# A 4-task mixture (16 members); small windows so that tests cross several of them.
CFG = TrainInput(mixture_or_task_name="flan_offline_translation_eval",
                 task_feature_lengths={"inputs": 128, "targets": 32}, batch_size=4, seed=3,
                 num_workers=0, pack_window=64)


def take(iterator, n):
  return [next(iterator) for _ in range(n)]


def assert_same(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert x.keys() == y.keys()
    for key in x:
      np.testing.assert_array_equal(x[key], y[key], err_msg=key)


def replace(cfg, **fields):
  return TrainInput(**{**cfg.__dict__, **fields})


@pytest.fixture(scope="module")
def resumed():
  """40 batches of an uninterrupted run, and 10 from an iterator restored after 30."""
  iterator = DataIterator(CFG)
  first = take(iterator, 30)
  state = json.loads(json.dumps(iterator.state()))  # as the checkpoint stores it
  rest = take(iterator, 10)
  fresh = DataIterator(CFG)
  fresh.restore(state)
  return first + rest, state, take(fresh, 10), fresh


def test_grain_path_gives_packed_batches_of_local_rows(resumed):
  batches, state, *_ = resumed
  assert DataIterator(CFG).grain_path
  assert batches[0]["encoder_input_tokens"].shape == (4, 128)
  assert batches[0]["decoder_target_tokens"].shape == (4, 32)
  assert set(batches[0]) == set(packing.ENCODER + packing.DECODER)
  assert state["version"] == 2 and state["shards"][0][0] >= 2  # past several windows
  stats = packing.packing_stats(batches)
  assert stats["efficiency"] > 0.85, stats


def test_same_seed_same_batches_other_seed_differs(resumed):
  batches, *_ = resumed
  assert_same(take(DataIterator(CFG), 40), batches)
  other = take(DataIterator(replace(CFG, seed=4)), 2)
  assert not np.array_equal(other[0]["encoder_input_tokens"],
                            batches[0]["encoder_input_tokens"])


def test_restored_iterator_continues_exactly(resumed):
  batches, state, continued, fresh = resumed
  assert state["batches_consumed"] == 30 and fresh.batches_consumed == 40
  assert_same(continued, batches[30:])


def test_resume_far_into_the_stream_costs_what_a_resume_at_zero_costs():
  """A position a million windows in (hundreds of millions of examples) restores by
  rendering one window, and continues exactly as the stream there does."""
  iterator = DataIterator(CFG)
  far = {**iterator.state(), "batches_consumed": 10**8, "shards": [[10**6, 5]]}
  start = time.perf_counter()
  iterator.restore(far)
  restore_s = time.perf_counter() - start
  continued = take(iterator, 3)
  start = time.perf_counter()
  iterator.restore({**far, "batches_consumed": 0, "shards": [[0, 5]]})
  zero_s = time.perf_counter() - start
  assert restore_s < zero_s + 2.0, (restore_s, zero_s)
  iterator.restore({**far, "shards": [[10**6, 1]]})
  next(iterator)  # rows 1-4 of the same window, then 5-8: the far rows again
  assert_same(take(iterator, 1), continued[:1])
  assert not np.array_equal(continued[0]["encoder_input_tokens"],
                            take(DataIterator(CFG), 1)[0]["encoder_input_tokens"])


def test_worker_processes_give_the_batches_of_one_process(resumed):
  batches, *_ = resumed
  iterator = DataIterator(replace(CFG, num_workers=2))
  try:
    assert_same(take(iterator, 40), batches)
  finally:
    iterator.close()


def test_global_batches_do_not_depend_on_the_process_count():
  """With num_shards fixed, one process reading both shards yields exactly the rows two
  processes yield together (host 0's, then host 1's), and a position saved by one
  restores on the other."""
  cfg = replace(CFG, num_shards=2)
  alone = DataIterator(cfg)
  first = take(alone, 12)
  hosts = [DataIterator(cfg, process_index=i, process_count=2) for i in (0, 1)]
  joined = [{key: np.concatenate([h0[key], h1[key]]) for key in h0}
            for h0, h1 in zip(*[take(h, 12) for h in hosts])]
  assert_same(first, joined)
  assert alone.fingerprint == hosts[1].fingerprint
  state = alone.state()
  later = take(alone, 3)
  host1 = DataIterator(cfg, process_index=1, process_count=2)
  host1.restore(state)
  assert_same(take(host1, 3), [{k: v[2:] for k, v in batch.items()} for batch in later])


def test_hosts_read_disjoint_examples():
  cfg = replace(CFG, pack=False, shuffle=False)
  rows = []
  for host in (0, 1):
    batches = take(DataIterator(cfg, process_index=host, process_count=2), 20)
    assert all(b["encoder_input_tokens"].shape == (2, 128) for b in batches)
    rows.append({b["encoder_input_tokens"][i].tobytes() for b in batches for i in range(2)})
  assert len(rows[0]) > 20 and len(rows[1]) > 20
  assert not rows[0] & rows[1]


def test_unpacked_rows_have_seqio_converter_features():
  cfg = replace(CFG, pack=False)
  batch = next(DataIterator(cfg))
  spec = make_dataset(cfg).element_spec  # seqio's EncDecFeatureConverter(pack=False)
  assert {k: (v.shape, v.dtype) for k, v in batch.items()} == {
      k: (tuple(s.shape), s.dtype.as_numpy_dtype) for k, s in spec.items()}
  row = {k: v[0] for k, v in batch.items()}
  np.testing.assert_array_equal(row["decoder_input_tokens"][1:],
                                row["decoder_target_tokens"][:-1])
  assert row["decoder_input_tokens"][0] == 0


def test_state_from_another_config_is_refused(resumed):
  _, state, *_ = resumed
  for other in (replace(CFG, seed=4), replace(CFG, pack_window=32)):
    with pytest.raises(CheckpointError, match="different input configuration"):
      DataIterator(other).restore(state)
  # The number of workers does not change the stream, so its positions carry over.
  DataIterator(replace(CFG, num_workers=1)).restore(state)


def test_bad_batch_size_workers_and_unknown_name():
  with pytest.raises(PartitioningError, match=r"batch_size=5 .* 2 data shards \(2 processes"):
    DataIterator(replace(CFG, batch_size=5), 0, 2)
  with pytest.raises(MixtureError, match="did you mean flan_offline_translation_eval"):
    DataIterator(replace(CFG, mixture_or_task_name="flan_offline_translaton_eval"))
  with pytest.raises(FlanTuneError, match=r"TrainInput.num_workers=-1 must be an int >= 0"):
    replace(CFG, num_workers=-1)


@pytest.fixture
def jsonl_task(tmp_path):
  """A task over a JSONL file whose 7th line is malformed, in its own mixture."""
  rows = [{"q": f"question {i}", "a": "yes" if i % 2 else "no"} for i in range(20)]
  path = write_jsonl(tmp_path / "train.jsonl", rows[:6] + ['{"q": "broken"'] + rows[6:])
  names = register_task(name="grain_jsonl", source=JsonlSource({"train": path}),
                        templates=[Template("{q}", "{a}")], cluster="qa",
                        options=["yes", "no"], styles=["zs_opt"])
  register_mixture("grain_jsonl_mix", ["grain_jsonl"])
  yield path, names
  unregister_mixture("grain_jsonl_mix")
  unregister(["grain_jsonl"])


@pytest.mark.parametrize("workers", [0, 1])
def test_malformed_record_names_file_and_line(jsonl_task, workers):
  path, _ = jsonl_task
  cfg = replace(CFG, mixture_or_task_name="grain_jsonl_mix", num_workers=workers,
                task_feature_lengths={"inputs": 32, "targets": 8}, pack_window=8)
  with pytest.raises(Exception, match=rf"{path}:7: invalid JSON"):
    iterator = DataIterator(cfg)
    try:
      take(iterator, 20)
    finally:
      iterator.close()


def test_a_plain_seqio_task_trains_through_tf_data_with_a_note(caplog):
  """A seqio task registered without register_task has no records to read by index:
  the mixture takes tf.data, logged as the slow path, and still resumes exactly."""
  import tensorflow as tf

  def dataset_fn(split, shuffle_files, seed=None):
    del split, shuffle_files, seed
    return tf.data.Dataset.from_tensor_slices({"inputs": [f"in {i}" for i in range(50)],
                                               "targets": ["out"] * 50})

  name = "plain_seqio_task"
  seqio.TaskRegistry.add(
      name, source=seqio.FunctionDataSource(dataset_fn, splits=["train"]),
      preprocessors=[seqio.preprocessors.tokenize, seqio.preprocessors.append_eos_after_trim],
      output_features={k: seqio.Feature(default_vocabulary()) for k in ("inputs", "targets")})
  try:
    cfg = replace(CFG, mixture_or_task_name=name, task_feature_lengths={"inputs": 32,
                                                                        "targets": 8})
    with caplog.at_level(logging.WARNING):
      iterator = DataIterator(cfg)
    assert not iterator.grain_path
    assert "read through tf.data, the slow path" in caplog.text
    assert f"member {name!r} is not a task registered with register_task" in caplog.text
    batches = take(iterator, 5)
    state = iterator.state()
    assert state["version"] == 1
    fresh = DataIterator(cfg)
    fresh.restore(state)
    assert_same(take(fresh, 2), take(iterator, 2))
    assert_same(take(make_dataset(cfg).as_numpy_iterator(), 5), batches)
  finally:
    seqio.TaskRegistry.remove(name)
