import os
import subprocess
import sys


from flan_tune.tasks import options, seeding


def test_same_seed_same_style_different_examples_vary():
  styles = [options.draw_style(seeding.example_rng(0, "task", key)) for key in range(200)]
  again = [options.draw_style(seeding.example_rng(0, "task", key)) for key in range(200)]
  assert styles == again
  assert len({s.header for s in styles}) > 5 and len({s.marker for s in styles}) > 5
  other_seed = [options.draw_style(seeding.example_rng(1, "task", key)) for key in range(200)]
  assert other_seed != styles


def test_enumerated_markers():
  style = options.OptionStyle(header="Pick one:", marker="({A}) ", separator="\n")
  assert style.render(["yes", "no"]) == "Pick one:\n(A) yes\n(B) no"
  style = options.OptionStyle(header="OPTIONS:", marker="{n}. ", separator=" ")
  assert style.render(["x", "y", "z"]) == "OPTIONS: 1. x 2. y 3. z"
  assert options._letter(26) == "AA"


def test_pools_have_no_glued_entries():
  for pool in (options.HEADERS, options.MARKERS, options.SEPARATORS):
    assert len(set(pool)) == len(pool)
  assert all("\n" not in h for h in options.HEADERS)


def test_rendering_is_identical_across_processes():
  code = ("from flan_tune.tasks import options, seeding;"
          "print([options.draw_style(seeding.example_rng(7, 't', seeding.example_key("
          "{'a': str(i)}))) for i in range(20)])")
  outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "PYTHONHASHSEED": seed}, check=True).stdout
             for seed in ("1", "2")}
  assert len(outputs) == 1
