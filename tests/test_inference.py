"""`flan-tune infer` and `flan-tune generate` as users run them, on a tiny random model:
JSONL and task inputs, scores, resuming after a kill, a sharded mesh, bad input."""

import json
import subprocess
import sys

import pytest

import training_runs as runs_lib

pytestmark = pytest.mark.xdist_group("inference")
LENGTHS = "inputs=32,targets=8"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
  directory = tmp_path_factory.mktemp("model") / "tiny"
  runs_lib.write_initial_checkpoint(directory)
  return str(directory)


def run(*args, devices=1, stdin=None):
  env = runs_lib.device_env(devices, TF_CPP_MIN_LOG_LEVEL="3")
  return subprocess.run([sys.executable, "-m", "flan_tune.cli", *args], capture_output=True,
                        text=True, env=env, cwd=runs_lib.REPO, input=stdin, timeout=300)


def rows(path):
  with open(path) as f:
    return [json.loads(line) for line in f]


def write_inputs(path, count=7):
  with open(path, "w") as f:
    for i in range(count):
      f.write(json.dumps({"inputs": f"Translate to the conlang: river {i}",
                          "targets": f"answer {i}"}) + "\n")
  return str(path)


def test_jsonl_inputs_scores_and_resuming_after_a_kill(model, tmp_path):
  inputs = write_inputs(tmp_path / "in.jsonl")
  args = ["infer", model, inputs, "--lengths", LENGTHS, "--batch_size", "4",
          "--chunk_size", "3", "--score"]
  done = run(*args, "--output", str(tmp_path / "full.jsonl"))
  assert done.returncode == 0, done.stderr[-3000:]
  full = rows(tmp_path / "full.jsonl")
  assert [r["inputs"] for r in full] == [f"Translate to the conlang: river {i}" for i in range(7)]
  assert all(r["targets"] == f"answer {i}" and r["score"] < 0 and "prediction" in r
             for i, r in enumerate(full))
  assert "infer: 7/7 [####################]" in done.stderr

  # A run killed while writing its third row: two rows whole, the third cut short.
  text = (tmp_path / "full.jsonl").read_text().splitlines(keepends=True)
  (tmp_path / "killed.jsonl").write_text("".join(text[:2]) + text[2][:10])
  done = run(*args, "--output", str(tmp_path / "killed.jsonl"))
  assert done.returncode == 0, done.stderr[-3000:]
  assert "infer: 5/7" in done.stderr and "infer: 3/7" not in done.stderr  # from row 3 on
  assert (tmp_path / "killed.jsonl").read_text() == (tmp_path / "full.jsonl").read_text()
  again = run(*args, "--output", str(tmp_path / "full.jsonl"))
  assert "already holds all 7 rows" in again.stderr


def test_a_task_as_input_on_a_sharded_mesh(model, tmp_path):
  task = "str_reverse_words_zs_noopt"
  one = run("infer", model, task, "--output", str(tmp_path / "one.jsonl"), "--lengths",
            LENGTHS, "--batch_size", "8", "--split", "validation")
  assert one.returncode == 0, one.stderr[-3000:]
  sharded = run("infer", model, task, "--output", str(tmp_path / "sharded.jsonl"),
                "--lengths", LENGTHS, "--batch_size", "8", "--gin.MeshConfig.data=2",
                "--gin.MeshConfig.model=4", devices=8)
  assert sharded.returncode == 0, sharded.stderr[-3000:]
  expected = rows(tmp_path / "one.jsonl")
  assert expected and all(r["task"] == task and r["targets"] for r in expected)
  assert rows(tmp_path / "sharded.jsonl") == expected


def test_generate_answers_arguments_and_standard_input(model):
  given = run("generate", model, "Reverse: a b c", "--lengths", LENGTHS)
  assert given.returncode == 0, given.stderr[-3000:]
  assert len(given.stdout.splitlines()) == 1
  piped = run("generate", model, "--lengths", LENGTHS, "--method", "sample", "--seed", "3",
              stdin="Reverse: a b c\n\nSort: c b a\n")
  assert piped.returncode == 0, piped.stderr[-3000:]
  assert len(piped.stdout.splitlines()) == 2


def test_bad_input_file_is_one_clear_error(model, tmp_path):
  path = tmp_path / "bad.jsonl"
  path.write_text('{"inputs": "fine"}\n{"text": "no inputs"}\n')
  done = run("infer", model, str(path), "--output", str(tmp_path / "out.jsonl"),
             "--lengths", LENGTHS)
  assert done.returncode == 2
  assert f"{path}:2: each row needs a string 'inputs'" in done.stderr
  assert "Traceback" not in done.stderr
