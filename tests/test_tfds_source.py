"""A TFDS-backed task through seqio's TfdsDataSource, on tfds.testing.mock_data."""

import seqio
import tensorflow_datasets as tfds

from flan_tune.tasks import Template, register_task, tfds_source


def sst2_fields(raw):
  return {"sentence": raw["sentence"], "label": ("negative", "positive")[raw["label"] % 2]}


def test_tfds_task_renders_under_mock_data(unique, cleanup):
  cleanup[0].append(unique)
  register_task(name=unique, source=tfds_source("glue/sst2:2.0.0", splits=("train", "validation")),
                example_fn=sst2_fields, cluster="sentiment", options=["negative", "positive"],
                templates=[Template("{sentence}\nSentiment? {options_}", "{label}")])
  with tfds.testing.mock_data(num_examples=12):
    for style in ("zs_opt", "fs_noopt"):
      task = seqio.get_mixture_or_task(f"{unique}_{style}")
      # Mock data has no split sizes, which seqio's in-memory cache decision reads.
      ds = task.get_dataset({"inputs": 2048, "targets": 32}, split="validation", shuffle=False,
                            try_in_mem_cache=False)
      rendered = list(ds.as_numpy_iterator())
      assert len(rendered) == 12
      for e in rendered:
        assert e["targets_pretokenized"].decode() in ("negative", "positive")
        assert "Sentiment?" in e["inputs_pretokenized"].decode()
