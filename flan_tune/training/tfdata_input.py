"""The tf.data training input, for mixtures with a member that only streams: a seqio task
registered by other means than `register_task`, or a TFDS dataset not prepared as
ArrayRecord (the Grain input reads records by index and cannot take them).

It is seqio's own pipeline: every member a tf.data pipeline with its shuffle buffer,
sampled by `sample_from_datasets`, so start-up and host memory grow with the number of
members, and a resume replays every batch consumed (`DataIterator` skips them). The
data is cut into `num_shards` seqio shards; each host reads its own consecutive shards.
"""

from collections.abc import Mapping

import seqio
import tensorflow as tf

from flan_tune.training import packing


def host_batches(cfg, provider: seqio.DatasetProviderBase, shards: range, num_shards: int,
                 rows_per_shard: int) -> tf.data.Dataset:
  """This host's infinite stream of batches (numpy-able dicts of EncDec features): the
  rows of each of its `shards`, side by side. `cfg` is the TrainInput."""
  parts = [_shard_batches(cfg, provider, index, num_shards, rows_per_shard)
           for index in shards]
  ds = parts[0] if len(parts) == 1 else tf.data.Dataset.zip(tuple(parts)).map(
      lambda *rows: {name: tf.concat([r[name] for r in rows], 0) for name in rows[0]})
  options = tf.data.Options()
  options.deterministic = True
  return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def _shard_batches(cfg, provider: seqio.DatasetProviderBase, index: int, num_shards: int,
                   rows: int) -> tf.data.Dataset:
  """Batches of `rows` rows from seqio shard `index` of `num_shards`."""
  lengths = dict(cfg.task_feature_lengths)
  ds = provider.get_dataset(
      sequence_length=lengths, split=cfg.split, use_cached=cfg.use_cached,
      shuffle=cfg.shuffle, seed=cfg.seed, num_epochs=None,
      shard_info=seqio.ShardInfo(index=index, num_shards=num_shards))
  if cfg.pack and cfg.packer == "best_fit":
    ds = pack_dataset(ds, lengths)
  else:
    ds = seqio.EncDecFeatureConverter(pack=cfg.pack)(ds, lengths)
  return ds.batch(rows, drop_remainder=True)


def pack_dataset(ds: tf.data.Dataset, lengths: Mapping[str, int],
                 pool_size: int = packing.POOL_SIZE) -> tf.data.Dataset:
  """Best-fit-packed rows of `ds` (a seqio task's output: int32 "inputs" and "targets"),
  a drop-in for `seqio.EncDecFeatureConverter(pack=True)(ds, lengths)`, except that it
  trims overlong examples where seqio's converter refuses them. Every iteration starts a
  fresh packer over a fresh iterator of `ds`, so it is as deterministic as `ds`."""
  for name in ("inputs", "targets"):
    spec = ds.element_spec.get(name) if isinstance(ds.element_spec, dict) else None
    if spec is None or spec.dtype != tf.int32 or spec.shape.rank != 1:
      raise ValueError(f"pack_dataset needs a rank-1 int32 feature {name!r}; got {spec}")
  li, lt = int(lengths["inputs"]), int(lengths["targets"])
  options = tf.data.Options()
  options.deterministic = True
  # Prefetched: examples keep coming while the generator's thread packs.
  trimmed = ds.map(lambda ex: {"inputs": ex["inputs"][:li], "targets": ex["targets"][:lt]},
                   num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
  trimmed = trimmed.with_options(options)

  def rows():
    yield from packing.pack_examples(trimmed.as_numpy_iterator(), lengths, pool_size)

  signature = {name: tf.TensorSpec([li], tf.int32) for name in packing.ENCODER}
  signature.update({name: tf.TensorSpec([lt], tf.int32) for name in packing.DECODER})
  return tf.data.Dataset.from_generator(rows, output_signature=signature)
