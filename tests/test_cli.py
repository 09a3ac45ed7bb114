import re
import subprocess
import sys

from flan_tune import cli


def test_inspect_mixture_prints_samples_and_statistics(capsys):
  code = cli.main(["inspect", "flan_offline_coreference_eval", "--lengths",
                   "inputs=256,targets=64", "--examples", "1", "--sample", "10",
                   "--pack_examples", "50"])
  out = capsys.readouterr().out
  assert code == 0
  assert "== flan_offline_coreference_eval: 16 seqio tasks" in out
  assert "-- coref_pronoun_zs_opt  template_index" in out and "=> " in out
  assert "coref_objects_fs_noopt_rank" in out and "inputs p50/p90/p99/max" in out
  assert "Mixture share by style:" in out and "zs_opt" in out
  # Rank-classification members stream, so training packs this one on the tf.data path.
  assert "training's best-fit packer (tf.data, streaming)" in out
  assert "non-padding fraction" in out


def test_inspect_packs_as_training_does_in_either_mode(capsys):
  """Per task or sampled, the same draws packed by training's windowed best fit."""
  rows = {}
  for mode, flags in (("per_task", ["--pack_examples", "60", "--sample", "2"]),
                      ("sampled", ["--draws", "60"])):
    assert cli.main(["inspect", "flan_offline_translation_eval", "--mode", mode,
                     "--lengths", "inputs=128,targets=32", "--examples", "0", *flags]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("Packing"))
    assert "training's best-fit packer" in line and "windows of" in line
    rows[mode] = re.search(r": (\d+) rows", line).group(1)
  assert rows["per_task"] == rows["sampled"]


def test_inspect_single_task():
  result = subprocess.run([sys.executable, "-m", "flan_tune.cli", "inspect", "str_reverse_words",
                           "--sample", "5", "--pack_examples", "20", "--examples", "1"],
                          capture_output=True, text=True)
  assert result.returncode == 0, result.stderr
  assert "str_reverse_words_zs_inv" in result.stdout and "str_sort_words" not in result.stdout


def test_inspect_unknown_name_is_a_clear_error(capsys):
  assert cli.main(["inspect", "no_such_mixture"]) == 2
  assert ("inspect NAME='no_such_mixture' is not a registered seqio mixture or task"
          in capsys.readouterr().err)


def test_bad_module_is_a_clear_error(capsys):
  assert cli.main(["inspect", "x", "--module", "flan_tune_tasks.no_such_collection"]) == 2
  assert "cannot import task module 'flan_tune_tasks.no_such_collection'" in capsys.readouterr().err


def test_inspect_flan_offline_renders_every_member(capsys):
  from flan_tune.mixtures import mixture_rates
  code = cli.main(["inspect", "flan_offline", "--examples", "1", "--sample", "2",
                   "--pack_examples", "0"])  # packing is covered above
  out = capsys.readouterr().out
  assert code == 0
  members = mixture_rates("flan_offline")
  assert f"== flan_offline: {len(members)} seqio tasks" in out
  for member in members:
    assert f"\n-- {member}  template_index" in out  # a rendered example
    assert f"\n{member} " in out              # its row in the statistics table
  assert "Mixture share by cluster:" in out and "translation" in out


def test_a_runs_folder_in_the_working_directory_does_not_break_gin_includes(tmp_path):
  """runs/lora.gin includes runs/finetune.gin; gin first probes `runs` as a Python package,
  which an output folder of that name in the working directory (on sys.path under
  `python -m`) is, as a namespace package."""
  (tmp_path / "runs" / "demo").mkdir(parents=True)
  result = subprocess.run([sys.executable, "-m", "flan_tune.cli", "plan",
                           "--gin_file=models/t5_1_1_tiny.gin", "--gin_file=runs/lora.gin",
                           "--mesh=data=1", "--batch_size=8", "--lengths=inputs=64,targets=16"],
                          cwd=tmp_path, capture_output=True, text=True)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "tuning lora" in result.stdout
