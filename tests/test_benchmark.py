"""tools/benchmark.py runs end to end and compares like with like (timings are not checked)."""

import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import benchmark  # noqa: E402

LENGTHS = {"inputs": 128, "targets": 32}


@pytest.fixture(scope="module")
def stream():
  # One cluster's mixture: the benchmark's default, all of flan_offline, takes 90 s to build.
  return benchmark.offline_examples(120, LENGTHS, mixture="flan_offline_translation_eval")


def _tokens(batches):
  return sorted(int(t) for b in batches for name in ("encoder_input_tokens",
                                                    "decoder_target_tokens")
                for t in b[name][b[name] != 0])


def test_packed_and_padded_sides_train_on_the_same_examples(stream):
  packed = benchmark.packed_batches(stream, 8, LENGTHS, 2)
  examples = benchmark.unpacked(packed)
  padded = benchmark.padded_batches(examples, 8)
  assert len(packed) == 2 and all(b["encoder_input_tokens"].shape == (8, 128) for b in packed)
  assert _tokens(packed) == _tokens(padded)
  # Each unpacked example is one of the stream's, whole.
  originals = {(e["inputs"].tobytes(), e["targets"].tobytes()) for e in stream}
  assert all((e["inputs"].tobytes(), e["targets"].tobytes()) in originals for e in examples)
  assert len(padded) == -(-len(examples) // 8) and len(examples) > 16
  # Packing uses fewer token slots than padding to each batch's longest example.
  slots = lambda batches: sum(b["encoder_input_tokens"].size for b in batches)  # noqa: E731
  assert slots(packed) < slots(padded)


def test_useful_work_trains_both_sides_on_the_stream(stream, tmp_path):
  args = benchmark.parse_args(["--model", "offline_demo", "--useful_batches", "1",
                               "--lengths", "inputs=128,targets=32"])
  config, params = _offline_demo()
  benchmark.export_hf(config, params, tmp_path)
  useful = benchmark.useful_section(config, params, str(tmp_path), "float32", args, stream)
  assert useful["examples"] > 8 and useful["non_padding_tokens"] > 0
  assert useful["flan_tune"]["token_slots"] < useful["transformers"]["token_slots"]
  assert np.isfinite(useful["speedup"])


def _offline_demo():
  import jax

  from flan_tune.model import T5, T5Config, init_variables, unbox

  import gin

  benchmark.parse_gin(["models/offline_demo.gin"], [])
  config = T5Config()
  gin.clear_config()
  params = unbox(init_variables(T5(config), jax.random.key(0)))["params"]
  return config, jax.tree.map(np.asarray, params)


def test_benchmark_runs_and_writes_json(tmp_path):
  """main() end to end on the train section (decode: tests/test_gpu_check.py runs the
  same functions; useful work: above, on the shared stream)."""
  out = tmp_path / "bench.json"
  assert benchmark.main(["--model", "offline_demo", "--sections", "train",
                         "--dtypes", "float32", "--steps", "1", "--peak_size", "256",
                         "--lengths", "inputs=64,targets=16", "--json", str(out)]) == 0
  results = json.loads(out.read_text())
  assert results["peak_flops"]["float32"] > 0
  train = results["train"]["float32"]
  assert np.isfinite(train["speedup"]) and 0 < train["flan_tune_mfu"] < 1
