"""The vocabulary tasks use unless they name one."""

import functools

import seqio


@functools.cache
def default_vocabulary() -> seqio.Vocabulary:
  """Byte-level until a collection ships its SentencePiece model; needs no files."""
  return seqio.ByteVocabulary()
