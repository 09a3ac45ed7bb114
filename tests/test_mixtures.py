import numpy as np
import pytest
import seqio

from flan_tune.errors import MixtureError
from flan_tune.mixtures import (MixtureSpec, compute_rates, register_held_out_mixtures,
                                register_mixture)
from flan_tune.mixtures.rates import capped_rate
from flan_tune.tasks import GeneratorSource, Template, register_task

ONLY_NOOPT = {"zs_noopt": 1.0}


def add_task(cleanup, name, n, cluster="c1", collection="a", validation=4):
  def rows(split):
    count = n if split == "train" else validation
    for i in range(count):
      yield {"q": f"{name} {split} question {i} " + "word " * (i % 7), "a": f"answer {i % 3}"}

  cleanup[0].append(name)
  register_task(name=name, source=GeneratorSource(rows, splits=("train", "validation")),
                cluster=cluster, collection=collection,
                templates=[Template("{q}", "{a}"), Template("Q: {q}\nA:", "{a}")])
  return name


def test_capped_rate_and_temperature():
  assert capped_rate(100, cap=300) == 100
  assert capped_rate(1000, cap=300) == 300
  assert capped_rate(400, temperature=2.0) == pytest.approx(20.0)


def test_rates_capped_examples_proportional(unique, cleanup):
  small = add_task(cleanup, f"{unique}_s", 100)
  big = add_task(cleanup, f"{unique}_b", 400)
  rates = compute_rates("m", [small, big], MixtureSpec(caps={"a": 300}, style_weights=ONLY_NOOPT))
  assert rates == pytest.approx({f"{small}_zs_noopt": 100 / 400, f"{big}_zs_noopt": 300 / 400})


def test_rates_with_style_and_collection_weights(unique, cleanup):
  a = add_task(cleanup, f"{unique}_a", 100, collection="x")
  b = add_task(cleanup, f"{unique}_b", 300, collection="y")
  spec = MixtureSpec(collection_weights={"x": 3, "y": 1},
                     style_weights={"zs_noopt": 1, "fs_noopt": 3})
  rates = compute_rates("m", [a, b], spec)
  # collection x gets 3/4, split 1:3 between zero- and few-shot; the same inside y.
  assert rates == pytest.approx({
      f"{a}_zs_noopt": 0.75 * 0.25, f"{a}_fs_noopt": 0.75 * 0.75,
      f"{b}_zs_noopt": 0.25 * 0.25, f"{b}_fs_noopt": 0.25 * 0.75})
  assert sum(rates.values()) == pytest.approx(1.0)


def test_rates_with_temperature(unique, cleanup):
  a, b = add_task(cleanup, f"{unique}_a", 100), add_task(cleanup, f"{unique}_b", 400)
  rates = compute_rates("m", [a, b], MixtureSpec(temperature=2.0, style_weights=ONLY_NOOPT))
  assert rates[f"{a}_zs_noopt"] == pytest.approx(10 / 30)


def test_unknown_task_suggests_close_names(unique, cleanup):
  a = add_task(cleanup, f"{unique}_alpha", 10)
  with pytest.raises(MixtureError, match=rf"names unknown task '{unique}_alpah'.*did you mean"):
    compute_rates("m", [a, f"{unique}_alpah"], MixtureSpec())


def test_zero_rates_are_errors(unique, cleanup):
  a = add_task(cleanup, f"{unique}_a", 10)
  empty = add_task(cleanup, f"{unique}_e", 0)
  with pytest.raises(MixtureError, match=rf"task '{empty}' has 0 examples .* rate would be zero"):
    compute_rates("m", [a, empty], MixtureSpec())
  with pytest.raises(MixtureError, match="collection 'a' has weight 0"):
    compute_rates("m", [a], MixtureSpec(collection_weights={"a": 0}))
  with pytest.raises(MixtureError, match="every prompt style of its tasks has weight zero"):
    compute_rates("m", [a], MixtureSpec(style_weights={"zs_opt": 1.0}))


def test_duplicate_mixture_name(unique, cleanup):
  a = add_task(cleanup, f"{unique}_a", 10)
  cleanup[1].append(f"{unique}_mix")
  register_mixture(f"{unique}_mix", [a])
  with pytest.raises(MixtureError, match="already registered"):
    register_mixture(f"{unique}_mix", [a])


def test_held_out_mixtures(unique, cleanup):
  tasks = [add_task(cleanup, f"{unique}_{i}", 20, cluster=f"k{i % 2}") for i in range(4)]
  names = register_held_out_mixtures(unique, tasks, MixtureSpec(style_weights=ONLY_NOOPT))
  for train, evaluation in names.values():
    cleanup[1].extend([train, evaluation])
  train, evaluation = names["k0"]
  assert train == f"{unique}_no_k0" and evaluation == f"{unique}_k0_eval"
  trained = {t.name for t in seqio.get_mixture_or_task(train).tasks}
  evaluated = {t.name for t in seqio.get_mixture_or_task(evaluation).tasks}
  assert trained == {f"{tasks[1]}_zs_noopt", f"{tasks[3]}_zs_noopt"}
  assert evaluated == {f"{tasks[i]}_{s}" for i in (0, 2) for s in ("zs_noopt", "fs_noopt")}


@pytest.mark.parametrize("on_exhausted, expected", [("stop", None), ("continue", 60)])
def test_what_happens_when_a_task_runs_out(unique, cleanup, on_exhausted, expected):
  a, b = add_task(cleanup, f"{unique}_a", 10), add_task(cleanup, f"{unique}_b", 50)
  name = f"{unique}_{on_exhausted}"
  cleanup[1].append(name)
  # Equal rates (cap 10): the 10-example task runs out after about 20 draws.
  register_mixture(name, [a, b], MixtureSpec(style_weights=ONLY_NOOPT, caps={"a": 10},
                                             on_exhausted=on_exhausted))
  ds = seqio.get_mixture_or_task(name).get_dataset(
      {"inputs": 128, "targets": 16}, split="train", num_epochs=1, seed=0, shuffle=True)
  count = sum(1 for _ in ds.as_numpy_iterator())
  if expected is None:
    assert count < 40  # stops when the 10-example task is exhausted
  else:
    assert count == expected  # every example of both tasks exactly once


def test_same_seed_same_mixture_stream(unique, cleanup):
  a, b = add_task(cleanup, f"{unique}_a", 30), add_task(cleanup, f"{unique}_b", 30)
  cleanup[1].append(f"{unique}_mix")
  mixture = register_mixture(f"{unique}_mix", [a, b])

  def stream(seed):
    ds = mixture.get_dataset({"inputs": 256, "targets": 16}, split="train", seed=seed)
    return [e["inputs"].tolist() for e in ds.take(40).as_numpy_iterator()]

  assert stream(1) == stream(1)
  assert stream(1) != stream(2)


def test_packing_keeps_segments_apart(unique, cleanup):
  a = add_task(cleanup, f"{unique}_a", 40)
  task = seqio.get_mixture_or_task(f"{a}_zs_noopt")
  lengths = {"inputs": 128, "targets": 32}
  ds = task.get_dataset(lengths, split="train", shuffle=False)
  singles = {(tuple(e["inputs"]), tuple(e["targets"])) for e in ds.as_numpy_iterator()}
  packed = seqio.EncDecFeatureConverter(pack=True)(ds, lengths)
  seen = 0
  for row in packed.as_numpy_iterator():
    enc_seg, dec_seg = row["encoder_segment_ids"], row["decoder_segment_ids"]
    assert row["encoder_positions"][0] == 0
    for segment in set(enc_seg[enc_seg > 0].tolist()):
      inputs = row["encoder_input_tokens"][enc_seg == segment]
      targets = row["decoder_target_tokens"][dec_seg == segment]
      assert (row["encoder_positions"][enc_seg == segment] == np.arange(len(inputs))).all()
      assert (tuple(inputs), tuple(targets)) in singles
      seen += 1
  assert seen == len(singles)
