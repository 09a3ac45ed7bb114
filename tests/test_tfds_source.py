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


class TinyYesNo(tfds.core.GeneratorBasedBuilder):
  """A real TFDS builder, prepared locally (no download) in ArrayRecord format."""
  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        "question": tfds.features.Text(),
        "label": tfds.features.ClassLabel(names=["no", "yes"])}))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {"train": self._generate_examples(40)}

  def _generate_examples(self, count):
    for i in range(count):
      yield i, {"question": f"is {i} even?", "label": int(i % 2 == 0)}


def yes_no_fields(raw):
  return {"question": raw["question"], "answer": ("no", "yes")[raw["label"]]}


def test_tfds_array_record_dataset_is_read_by_index(unique, cleanup, tmp_path):
  from flan_tune.mixtures import register_mixture
  from flan_tune.tasks import sources
  from flan_tune.training.input_pipeline import DataIterator, TrainInput

  TinyYesNo(data_dir=str(tmp_path), file_format="array_record").download_and_prepare()
  source = tfds_source("tiny_yes_no:1.0.0", splits=("train",), tfds_data_dir=str(tmp_path))
  records = sources.random_access_records(source, "train")
  assert len(records) == 40
  streamed = {(e["question"].decode(), int(e["label"]))
              for e in source.get_dataset("train", shuffle=False).as_numpy_iterator()}
  assert {(r["question"], r["label"]) for r in records} == streamed
  assert records[5]["_origin"].endswith("[train][5]")
  cleanup[0].append(unique)
  register_task(name=unique, source=source, example_fn=yes_no_fields, cluster="qa",
                options=["no", "yes"], styles=["zs_opt", "fs_opt"],
                templates=[Template("{question} {options_}", "{answer}")])
  register_mixture(f"{unique}_mix", [unique])
  cleanup[1].append(f"{unique}_mix")
  iterator = DataIterator(TrainInput(mixture_or_task_name=f"{unique}_mix", batch_size=2,
                                     task_feature_lengths={"inputs": 64, "targets": 8},
                                     num_workers=0, pack_window=16))
  assert iterator.grain_path  # both the training split and the exemplar pool by index
  assert next(iterator)["encoder_input_tokens"].shape == (2, 64)


def test_tfds_dataset_in_tfrecord_only_streams(tmp_path):
  from flan_tune.tasks import sources

  TinyYesNo(data_dir=str(tmp_path)).download_and_prepare()
  source = tfds_source("tiny_yes_no:1.0.0", splits=("train",), tfds_data_dir=str(tmp_path))
  assert sources.random_access_records(source, "train") is None
