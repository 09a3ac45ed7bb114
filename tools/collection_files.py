"""Writes the real collections' published layouts with generated text, for tests and
benchmarks (nothing can be downloaded here):

- a Natural Instructions v2 checkout: `tasks/taskNNN_<name>.json` in the repository's
  schema, and `splits/default/{train,test,excluded}_tasks.txt`;
- FLAN 2022 submix files: Parquet or JSONL(.gz) rows with the columns `inputs, targets,
  task_source, task_name, template_type`.

Sizes are parameters, so the same writers make a test's few tiny files and a benchmark's
full-size collection. Every choice comes from `seed`.
"""

import gzip
import json
import os
import random
from typing import Dict, Optional, Sequence

WORDS = ("the model reads a short passage and answers what it was asked about the text "
         "question answer sentence premise hypothesis review movie story person city "
         "river because however therefore which where when who what number year").split()
CATEGORIES = ("Question Answering", "Sentiment Analysis", "Textual Entailment",
              "Summarization", "Program Execution", "Text Categorization")
NON_ENGLISH = ("Spanish", "Japanese", "Hindi")


def _text(rng: random.Random, low: int, high: int) -> str:
  return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


def niv2_task(rng: random.Random, number: int, instances: int, language: str = "English",
              category: Optional[str] = None, input_words=(8, 40)) -> dict:
  """One task file's content in the repository's schema."""
  category = category or CATEGORIES[number % len(CATEGORIES)]
  positives = [{"input": _text(rng, *input_words), "output": _text(rng, 1, 4),
                "explanation": _text(rng, 5, 15)} for _ in range(rng.randint(2, 4))]
  return {
      "Contributors": ["generated"], "Source": ["generated"], "URL": [""],
      "Categories": [category], "Reasoning": [], "Definition": [_text(rng, 15, 60)],
      "Input_language": [language], "Output_language": [language],
      "Instruction_language": ["English"], "Domains": ["Miscellaneous"],
      "Positive Examples": positives,
      "Negative Examples": [{"input": _text(rng, 5, 10), "output": "no",
                             "explanation": _text(rng, 3, 8)}],
      "Instances": [{"id": f"task{number}-{i}", "input": _text(rng, *input_words),
                     "output": [_text(rng, 1, 4) for _ in range(rng.randint(1, 3))]}
                    for i in range(instances)],
      "Instance License": ["Unknown"],
  }


def write_niv2(root: str, num_train: int, num_test: int, *, num_excluded: int = 0,
               instances=(20, 40), input_words=(8, 40), non_english: int = 0,
               first_number: int = 1, seed: int = 0) -> Dict[str, list]:
  """A checkout under `root`; returns the task names per split, numbered from
  `first_number`. Instance counts are drawn log-uniformly from `instances`; the first
  `non_english` train tasks have non-English inputs and outputs."""
  rng = random.Random(seed)
  os.makedirs(os.path.join(root, "tasks"), exist_ok=True)
  os.makedirs(os.path.join(root, "splits", "default"), exist_ok=True)
  names = {"train": [], "test": [], "excluded": []}
  number = first_number
  for split, count in (("train", num_train), ("test", num_test), ("excluded", num_excluded)):
    for i in range(count):
      name = f"task{number}_generated_{split}_{i}"
      language = NON_ENGLISH[i % len(NON_ENGLISH)] if split == "train" and i < non_english \
          else "English"
      low, high = instances
      size = int(round(low * (high / low) ** rng.random())) if high > low else low
      with open(os.path.join(root, "tasks", f"{name}.json"), "w") as f:
        json.dump(niv2_task(rng, number, size, language, input_words=input_words), f,
                  indent=4)
      names[split].append(name)
      number += 1
  for split, listed in names.items():
    with open(os.path.join(root, "splits", "default", f"{split}_tasks.txt"), "w") as f:
      f.write("".join(f"{name}\n" for name in listed))
  return names


SUBMIX_SOURCES = ("flan", "t0", "niv2", "cot", "dialog")
TEMPLATE_TYPES = ("zs_opt", "zs_noopt", "fs_opt", "fs_noopt")


def submix_rows(rng: random.Random, source: str, template_type: str, num_tasks: int,
                rows: int, input_words=(10, 80)) -> list:
  """Rows as the published files hold them: already rendered, with their metadata."""
  out = []
  for i in range(rows):
    task = rng.randrange(num_tasks)
    out.append({"inputs": _text(rng, *input_words) + "\nOptions:\n- yes\n- no",
                "targets": _text(rng, 1, 6), "task_source": source,
                "task_name": f"{source}_task_{task}", "template_type": template_type})
  return out


def write_submix(root: str, *, rows_per_file: int = 50, tasks_per_source: int = 3,
                 sources: Sequence[str] = SUBMIX_SOURCES,
                 template_types: Sequence[str] = TEMPLATE_TYPES, file_format: str = "jsonl",
                 row_group_size: int = 1000, input_words=(10, 80), seed: int = 0) -> list:
  """One file per (source, template type), named as the public JSONL mirror names them
  (`{source}_{zs,fs}_{opt,noopt}_train.jsonl[.gz]`, or `.parquet`); returns the paths."""
  rng = random.Random(seed)
  os.makedirs(root, exist_ok=True)
  paths = []
  for source in sources:
    for template_type in template_types:
      rows = submix_rows(rng, source, template_type, tasks_per_source, rows_per_file,
                         input_words)
      stem = os.path.join(root, f"{source}_{template_type}_train")
      if file_format == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = stem + ".parquet"
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=row_group_size)
      else:
        path = stem + (".jsonl.gz" if file_format == "jsonl.gz" else ".jsonl")
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "wt", encoding="utf-8") as f:
          f.writelines(json.dumps(row) + "\n" for row in rows)
      paths.append(path)
  return paths
