"""The vocabulary tasks use unless they name one."""

import functools

import seqio


@functools.cache
def default_vocabulary() -> seqio.Vocabulary:
  """Byte-level until a collection ships its SentencePiece model; needs no files."""
  return seqio.ByteVocabulary()


def sentencepiece_vocabulary(path: str, extra_ids: int = 100) -> seqio.Vocabulary:
  return seqio.SentencePieceVocabulary(path, extra_ids=extra_ids)
