"""`flan-tune compare`: aggregation, paired bootstrap intervals, refusals and renderers, on
small results files written with results.save and read back."""

import argparse
import csv
import dataclasses
import io
import json
import math
import os

import pytest

from flan_tune.errors import FlanTuneError
from flan_tune.evaluation import compare as compare_lib
from flan_tune.evaluation import results as results_lib
from flan_tune.evaluation.compare import HELD_IN, HELD_OUT, MIXED, Delta, aggregate, compare
from flan_tune.evaluation.results import EvalResults, ResultsError, TaskResult


def task(scores, ids=None, cluster="nli", style="zs_opt", held_out=False, chance=50.0,
         metric="accuracy"):
  ids = [f"ex{i}" for i in range(len(scores))] if ids is None else ids
  return TaskResult(family="fam", cluster=cluster, style=style, scoring=True,
                    held_out=held_out, primary_metric=metric, chance=chance,
                    metrics={metric: sum(scores) / len(scores), "other": 1.0},
                    example_ids=list(ids), example_scores=[float(s) for s in scores])


def make(model, tasks, split="validation"):
  return EvalResults(model=model, step=100, split=split, mixture="flan_eval",
                     checkpoint=f"/ckpt/{model}", tasks=tasks)


def roundtrip(tmp_path, *results):
  """Saves and loads back each results file, as `flan-tune compare` reads them."""
  loaded = []
  for r in results:
    path = tmp_path / f"{r.model}.json"
    results_lib.save(r, path)
    loaded.append(results_lib.load(path))
  return loaded


def approx_delta(delta, value, low, high):
  return (delta.value, delta.low, delta.high) == pytest.approx((value, low, high))


# A: nli, chance 50; B: nli, chance 25; C: commonsense, chance 20. The T5 baseline marks
# every task held out; the FLAN model holds out the nli cluster.
def hand_computed_pair():
  base = make("t5", {
      "task_a": task([100, 0, 100, 100], held_out=True),
      "task_b": task([100, 0, 0, 0], held_out=True, chance=25.0),
      "task_c": task([100, 100, 0, 0, 0], cluster="commonsense", held_out=True, chance=20.0)})
  flan = make("flan", {
      "task_a": task([100, 100, 100, 100], held_out=True),
      "task_b": task([100, 100, 0, 0], held_out=True, chance=25.0),
      "task_c": task([100, 100, 100, 0, 0], cluster="commonsense", chance=20.0)})
  return base, flan


def test_aggregates_and_normalized_averages_match_hand_computed_values(tmp_path):
  c = compare(roundtrip(tmp_path, *hand_computed_pair()))
  assert c.baseline == "t5" and c.others == ["flan"] and c.split == "validation"
  assert [(row.cluster, row.task, row.held) for row in c.rows] == [
      ("commonsense", "task_c", HELD_IN), ("nli", "task_a", HELD_OUT),
      ("nli", "task_b", HELD_OUT)]
  row_b = c.rows[2]
  assert row_b.scores == {"t5": 25.0, "flan": 50.0} and row_b.chance == 25.0
  assert row_b.normalized == pytest.approx({"t5": 0.0, "flan": 100 / 3})
  assert row_b.num_examples == 4 and row_b.primary_metric == "accuracy"

  nli = aggregate(c, "cluster", "nli")
  assert nli.held == HELD_OUT and nli.tasks == 2
  assert nli.scores == pytest.approx({"t5": 50.0, "flan": 75.0})
  assert nli.normalized == pytest.approx({"t5": 25.0, "flan": (100 + 100 / 3) / 2})
  commonsense = aggregate(c, "cluster", "commonsense")
  assert commonsense.scores == pytest.approx({"t5": 40.0, "flan": 60.0})
  assert commonsense.normalized == pytest.approx({"t5": 25.0, "flan": 50.0})
  held_out, held_in = aggregate(c, "split", HELD_OUT), aggregate(c, "split", HELD_IN)
  assert held_out.scores == pytest.approx(nli.scores) and held_out.tasks == 2
  assert held_in.scores == pytest.approx(commonsense.scores) and held_in.tasks == 1
  assert aggregate(c, "split", MIXED) is None
  overall = aggregate(c, "overall", "overall")
  assert overall.scores == pytest.approx({"t5": 140 / 3, "flan": 70.0})
  assert overall.normalized == pytest.approx({"t5": 25.0, "flan": (100 + 100 / 3 + 50) / 3})
  assert overall.deltas["flan"].value == pytest.approx(70 - 140 / 3)
  assert overall.normalized_deltas["flan"].value == pytest.approx((100 + 100 / 3 + 50) / 3 - 25)
  # the averages' intervals hold their deltas
  for agg in c.aggregates:
    for d in (agg.deltas["flan"], agg.normalized_deltas["flan"]):
      assert d.low <= d.value <= d.high


def test_held_marker_comes_from_the_non_baseline_models(tmp_path):
  base, flan = hand_computed_pair()
  other = make("flan_all", {name: task(t.example_scores, cluster=t.cluster, held_out=False,
                                       chance=t.chance) for name, t in flan.tasks.items()})
  c = compare(roundtrip(tmp_path, base, flan, other))
  assert {row.task: row.held for row in c.rows} == {
      "task_a": MIXED, "task_b": MIXED, "task_c": HELD_IN}
  assert aggregate(c, "cluster", "nli").held == MIXED
  assert aggregate(c, "split", MIXED).tasks == 2
  assert aggregate(c, "split", HELD_OUT) is None
  # with only a baseline, its own flags count
  alone = compare([base])
  assert {row.held for row in alone.rows} == {HELD_OUT} and alone.others == []
  assert aggregate(alone, "overall", "overall").deltas == {}


def test_identical_models_have_zero_delta_and_interval(tmp_path):
  scores = [100, 0, 100, 0, 0, 100, 100, 100]
  c = compare(roundtrip(tmp_path, make("a", {"t": task(scores)}), make("b", {"t": task(scores)})))
  assert c.rows[0].deltas["b"] == Delta(0.0, 0.0, 0.0)
  assert aggregate(c, "overall", "overall").deltas["b"] == Delta(0.0, 0.0, 0.0)


def test_right_wherever_the_baseline_is_wrong_gives_delta_100(tmp_path):
  base = make("t5", {"t": task([0] * 12, held_out=True)})
  flan = make("flan", {"t": task([100] * 12, held_out=True)})
  c = compare(roundtrip(tmp_path, base, flan))
  assert approx_delta(c.rows[0].deltas["flan"], 100, 100, 100)
  assert approx_delta(aggregate(c, "split", HELD_OUT).deltas["flan"], 100, 100, 100)
  # chance 50: the normalized delta doubles
  assert approx_delta(aggregate(c, "overall", "overall").normalized_deltas["flan"], 200, 200, 200)


def mixed_pair(repeat):
  """Baseline right on the first half, the model on the last three quarters: delta +25."""
  base = [100] * 20 + [0] * 20
  model = [0] * 10 + [100] * 30
  base, model = [s for s in base for _ in range(repeat)], [s for s in model for _ in range(repeat)]
  return make("t5", {"t": task(base)}), make("flan", {"t": task(model)})


def test_mixed_case_interval_holds_the_delta_and_narrows_with_more_examples(tmp_path):
  small = compare(mixed_pair(1)).rows[0].deltas["flan"]
  large = compare(mixed_pair(10)).rows[0].deltas["flan"]
  for d in (small, large):
    assert d.value == pytest.approx(25.0)
    assert d.low < d.value < d.high
  assert large.high - large.low < (small.high - small.low) / 2
  assert small.low < 0 < small.high  # 40 examples cannot tell
  assert large.low > 0               # 400 can


def test_bootstrap_is_seeded():
  # per-example F1: continuous scores, so different resamples give different percentiles
  base = [(i * 37) % 101 for i in range(60)]
  model = [(i * 53 + 11) % 101 for i in range(60)]
  pair = [make("t5", {"t": task(base, metric="f1")}), make("flan", {"t": task(model, metric="f1")})]
  first, again = compare(pair, seed=7), compare(pair, seed=7)
  other = compare(pair, seed=8)
  assert first.rows[0].deltas == again.rows[0].deltas
  assert first.aggregates == again.aggregates
  assert (first.rows[0].deltas["flan"].low, first.rows[0].deltas["flan"].high) != (
      other.rows[0].deltas["flan"].low, other.rows[0].deltas["flan"].high)
  assert compare(pair, num_bootstrap=50).num_bootstrap == 50


def test_a_task_without_examples_keeps_its_recorded_delta():
  empty = dataclasses.replace(task([100]), example_ids=[], example_scores=[],
                              metrics={"accuracy": 40.0})
  other = dataclasses.replace(empty, metrics={"accuracy": 55.0})
  c = compare([make("t5", {"t": empty}), make("flan", {"t": other})])
  assert c.rows[0].deltas["flan"] == Delta(15.0, 15.0, 15.0) and c.rows[0].num_examples == 0


def test_baseline_can_be_named_and_must_exist(tmp_path):
  base, flan = hand_computed_pair()
  c = compare([base, flan], baseline="flan")
  assert c.baseline == "flan" and c.models == ["t5", "flan"] and c.others == ["t5"]
  assert c.rows[0].deltas["t5"].value == pytest.approx(-20.0)
  with pytest.raises(ResultsError, match="baseline 'nope' is not among the models: t5, flan"):
    compare([base, flan], baseline="nope")


def test_duplicate_model_names_are_refused():
  base, flan = hand_computed_pair()
  with pytest.raises(ResultsError, match="model names must be unique.*'?t5'?.*distinct"):
    compare([base, make("t5", flan.tasks)])


def test_mismatched_task_sets_are_refused_unless_intersect(tmp_path):
  base, flan = hand_computed_pair()
  fewer = make("flan", {k: v for k, v in flan.tasks.items() if k != "task_b"})
  loaded = roundtrip(tmp_path, base, fewer)
  with pytest.raises(ResultsError) as error:
    compare(loaded)
  message = str(error.value)
  assert "t5, flan" in message and "task_b" in message and "flan lacks 1" in message
  assert "intersect=True" in message and "--intersect" in message
  c = compare(loaded, intersect=True)
  assert [row.task for row in c.rows] == ["task_c", "task_a"] and c.dropped == ["task_b"]
  assert "left out 1 task(s)" in compare_lib.to_terminal(c)


def test_different_examples_or_order_are_refused_unless_intersect(tmp_path):
  base, flan = hand_computed_pair()
  reordered = dict(flan.tasks)
  reordered["task_a"] = task([100] * 4, ids=["ex3", "ex2", "ex1", "ex0"], held_out=True)
  loaded = roundtrip(tmp_path, base, make("flan", reordered))
  with pytest.raises(ResultsError, match=r"1 shared task\(s\) have different examples.*task_a"
                                         r".*--intersect"):
    compare(loaded)
  c = compare(loaded, intersect=True)
  assert [row.task for row in c.rows] == ["task_c", "task_b"] and c.dropped == ["task_a"]


def test_many_differing_tasks_are_listed_with_a_count():
  base = make("t5", {f"task_{i:02d}": task([100, 0]) for i in range(8)})
  other = make("flan", {"other": task([100, 0])})
  with pytest.raises(ResultsError, match=r"9 task\(s\).*flan lacks 8\): other, task_00, "
                                         r"task_01, task_02, task_03 \(and 4 more\)"):
    compare([base, other])
  with pytest.raises(ResultsError, match="share no task"):
    compare([base, other], intersect=True)


def test_different_splits_are_refused_even_with_intersect():
  base, flan = hand_computed_pair()
  test_split = make("flan", flan.tasks, split="test")
  for intersect in (False, True):
    with pytest.raises(ResultsError, match="different splits.*t5: validation, flan: test.*"
                                           "cannot be intersected"):
      compare([base, test_split], intersect=intersect)


def test_terminal_table_is_grouped_by_cluster_with_deltas_and_markers(tmp_path):
  base, flan = hand_computed_pair()
  text = compare_lib.to_terminal(compare(roundtrip(tmp_path, base, flan)))
  lines = text.splitlines()
  assert "baseline t5" in lines[0] and "1000 resamples, seed 0" in lines[0]
  order = [next(i for i, line in enumerate(lines) if key in line)
           for key in ("== commonsense (held-in)", "task_c", "== nli (held-out)", "task_a",
                       "task_b", "Averages over tasks")]
  assert order == sorted(order)
  row_a = next(line for line in lines if "task_a" in line)
  assert row_a.startswith("* ") and "held-out" in row_a and "accuracy" in row_a
  assert "75.0" in row_a and "100.0" in row_a and "+25.0 [" in row_a
  assert next(line for line in lines if "task_c" in line).startswith("  task_c")
  overall = [line.split() for line in lines if line.startswith("overall")]
  assert overall[0][:5] == ["overall", "3", "score", "46.7", "70.0"]
  assert overall[0][5] == "+23.3" and overall[1][2:5] == ["normalized", "25.0", "61.1"]
  assert any(line.startswith("held-out") for line in lines)


def test_markdown_rows():
  text = compare_lib.to_markdown(compare(list(hand_computed_pair())))
  assert "| cluster | task | style | held | metric | chance | t5 | flan | Δ flan |" in text
  assert "| nli | *task_a* | zs_opt | held-out | accuracy | 50.0 | 75.0 | 100.0 | +25.0 [" in text
  assert ("| commonsense | task_c | zs_opt | held-in | accuracy | 20.0 | 40.0 | 60.0 | +20.0 ["
          in text)
  assert "| overall | 3 | normalized | 25.0 | 61.1 | +36.1 [" in text


def test_csv_has_a_line_per_task_and_model_and_per_aggregate():
  c = compare(list(hand_computed_pair()))
  lines = list(csv.DictReader(io.StringIO(compare_lib.to_csv(c))))
  tasks = [line for line in lines if line["kind"] == "task"]
  assert len(tasks) == 3 * 2
  assert len(lines) - len(tasks) == len(c.aggregates) * 2
  flan_b = next(line for line in tasks if line["name"] == "task_b" and line["model"] == "flan")
  assert float(flan_b["score"]) == 50.0 and float(flan_b["delta"]) == 25.0
  assert float(flan_b["normalized_delta"]) == pytest.approx(100 / 3)
  assert flan_b["held"] == HELD_OUT and flan_b["baseline"] == "False"
  base_b = next(line for line in tasks if line["name"] == "task_b" and line["model"] == "t5")
  assert base_b["delta"] == "" and base_b["baseline"] == "True"
  overall = next(line for line in lines
                 if line["name"] == "overall:overall" and line["model"] == "flan")
  assert float(overall["score"]) == 70.0 and overall["tasks"] == "3"
  assert float(overall["delta_low"]) <= float(overall["delta"]) <= float(overall["delta_high"])
  assert {line["name"] for line in lines if line["kind"] == "aggregate"} == {
      "cluster:commonsense", "cluster:nli", "split:held-in", "split:held-out",
      "overall:overall"}


def test_json_is_serialisable_and_complete():
  data = compare_lib.to_json(compare(list(hand_computed_pair()), seed=3))
  data = json.loads(json.dumps(data, allow_nan=False))
  assert data["baseline"] == "t5" and data["models"] == ["t5", "flan"] and data["seed"] == 3
  assert [row["task"] for row in data["rows"]] == ["task_c", "task_a", "task_b"]
  assert data["rows"][1]["deltas"]["flan"]["value"] == 25.0
  assert set(data["rows"][1]["deltas"]["flan"]) == {"value", "low", "high"}
  assert data["aggregates"][-1]["name"] == "overall"


def test_write_all_writes_four_files(tmp_path):
  paths = compare_lib.write_all(compare(list(hand_computed_pair())), tmp_path / "out")
  assert sorted(paths) == ["csv", "json", "md", "png"]
  for path in paths.values():
    assert os.path.getsize(path) > 0
  with open(paths["png"], "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  with open(paths["json"]) as f:
    assert json.load(f)["split"] == "validation"


def parse(argv):
  parser = argparse.ArgumentParser(prog="flan-tune compare")
  compare_lib.add_arguments(parser)
  return parser.parse_args(argv)


def test_run_prints_the_table_and_writes_files_only_with_out(tmp_path, capsys):
  base, flan = hand_computed_pair()
  paths = []
  for r in (base, flan):
    paths.append(str(tmp_path / f"{r.model}.json"))
    results_lib.save(r, paths[-1])
  assert compare_lib.run(parse(paths)) == 0
  out = capsys.readouterr().out
  assert "baseline t5" in out and "task_a" in out and "Δ flan" in out
  assert sorted(os.listdir(tmp_path)) == ["flan.json", "t5.json"]

  out_dir = tmp_path / "out"
  args = parse(paths + ["--baseline", "flan", "--out", str(out_dir), "--seed", "5",
                        "--bootstrap", "200"])
  assert (args.baseline, args.seed, args.bootstrap, args.intersect) == ("flan", 5, 200, False)
  assert compare_lib.run(args) == 0
  out = capsys.readouterr().out
  assert "baseline flan" in out and "200 resamples, seed 5" in out and "Δ t5" in out
  assert sorted(os.listdir(out_dir)) == ["comparison.csv", "comparison.json", "comparison.md",
                                         "comparison.png"]
  assert f"wrote {out_dir / 'comparison.png'}" in out


def test_run_refuses_mismatch_and_intersects_on_request(tmp_path, capsys):
  base, flan = hand_computed_pair()
  fewer = make("flan", {k: v for k, v in flan.tasks.items() if k != "task_c"})
  paths = []
  for r in (base, fewer):
    paths.append(str(tmp_path / f"{r.model}.json"))
    results_lib.save(r, paths[-1])
  with pytest.raises(ResultsError, match="--intersect"):
    compare_lib.run(parse(paths))
  assert compare_lib.run(parse(paths + ["--intersect"])) == 0
  out = capsys.readouterr().out
  assert "task_a" in out and "left out 1 task(s)" in out and "commonsense" not in out.split(
      "left out")[0]
  with pytest.raises(SystemExit):
    parse(paths + ["--bootstrap", "0"])
  assert "positive integer" in capsys.readouterr().err


def test_a_corpus_metric_interval_is_centred_on_the_recorded_delta(tmp_path):
  """BLEU: the recorded (corpus) scores differ from the mean sentence scores; the interval
  keeps the sentence-level spread around the recorded delta."""
  sentences = [10.0, 30.0, 20.0, 40.0, 0.0, 20.0]
  base = dataclasses.replace(task([0.0] * 6, metric="bleu", chance=0.0),
                             metrics={"bleu": 1.0, "other": 1.0})
  tuned = dataclasses.replace(task(sentences, metric="bleu", chance=0.0),
                              metrics={"bleu": 3.0, "other": 1.0})
  comparison = compare(roundtrip(tmp_path, make("t5", {"mt": base}),
                                         make("flan", {"mt": tuned})))
  delta = comparison.rows[0].deltas["flan"]
  assert delta.value == pytest.approx(2.0)
  assert delta.low < 2.0 < delta.high
  assert delta.high - delta.low > 10  # the sentence scores' spread, not a point


def test_option_share_is_averaged_per_cluster_and_split_and_shown(tmp_path):
  """The share of answers that are an offered option, for the tasks that record it."""
  def with_share(share, **kwargs):
    result = task([1.0, 0.0], **kwargs)
    return dataclasses.replace(result, metrics={**result.metrics, "option_share": share})

  base = make("t5", {"a": with_share(0.0), "b": with_share(10.0, cluster="qa"),
                     "c": task([0.0, 0.0], cluster="qa", held_out=True)})
  tuned = make("flan", {"a": with_share(90.0), "b": with_share(70.0, cluster="qa"),
                        "c": task([1.0, 1.0], cluster="qa", held_out=True)})
  c = compare(roundtrip(tmp_path, base, tuned), baseline="t5")
  assert aggregate(c, "cluster", "nli").option_share == {"t5": 0.0, "flan": 90.0}
  assert aggregate(c, "cluster", "qa").option_share == {"t5": 10.0, "flan": 70.0}
  assert aggregate(c, "split", HELD_IN).option_share == {"t5": 5.0, "flan": 80.0}
  held_out = aggregate(c, "split", HELD_OUT).option_share
  assert all(math.isnan(v) for v in held_out.values())
  text = compare_lib.to_terminal(c)
  assert "Answers that are one of the offered options" in text
  assert any(line.split()[:3] == ["held-in", "5.0", "80.0"] for line in text.splitlines())
  assert "## Answer format" in compare_lib.to_markdown(c)


def test_replicas_report_the_spread_of_their_deltas(tmp_path, capsys):
  """Seeds of one recipe: each group's mean, smallest and largest delta, and how many
  replicas' intervals clear zero; refused with fewer than two replicas."""
  base = make("t5", {"a": task([0] * 20), "b": task([0] * 20, cluster="qa", held_out=True)})
  seeds = [make(f"flan_seed{i}", {"a": task([100] * share + [0] * (20 - share)),
                                  "b": task([100] * 1 + [0] * 19, cluster="qa", held_out=True)})
           for i, share in enumerate((20, 10))]
  c = compare(roundtrip(tmp_path, base, *seeds), baseline="t5", replicas=True)
  by_group = {s.group: s for s in compare_lib.spread(c)}
  assert (by_group["held-in"].mean, by_group["held-in"].low,
          by_group["held-in"].high) == pytest.approx((75.0, 50.0, 100.0))
  assert by_group["held-in"].clear == 2
  assert by_group["held-out"].clear == 0  # one right answer in 20: the interval reaches zero
  assert "Spread across the replicas" in compare_lib.to_terminal(c)
  assert "## Spread across seeds" in compare_lib.to_markdown(c)
  assert compare_lib.to_json(c)["spread"][0]["group"] == "held-in"
  assert "Spread" not in compare_lib.to_terminal(compare(roundtrip(tmp_path, base, *seeds)))
  with pytest.raises(FlanTuneError, match="at least two models besides the baseline 't5'"):
    compare(roundtrip(tmp_path, base, seeds[0]), baseline="t5", replicas=True)
  paths = [str(tmp_path / f"{r.model}.json") for r in (base, *seeds)]
  parser = argparse.ArgumentParser()
  compare_lib.add_arguments(parser)
  assert compare_lib.run(parser.parse_args([*paths, "--replicas"])) == 0
  assert "intervals clear of 0" in capsys.readouterr().out
