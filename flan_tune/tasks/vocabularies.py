"""The vocabulary tasks use unless they name one."""

import functools
import os

import seqio

from flan_tune.errors import RegistrationError


@functools.cache
def default_vocabulary() -> seqio.Vocabulary:
  """Byte-level until a collection ships its SentencePiece model; needs no files."""
  return seqio.ByteVocabulary()


# T5's SentencePiece vocabularies append 100 sentinel ids (<extra_id_0> ...) to the pieces.
T5_EXTRA_IDS = 100


def sentencepiece_vocabulary(path=None, extra_ids: int = T5_EXTRA_IDS):
  """A SentencePiece model file (a T5 checkpoint's spiece.model) as a seqio vocabulary
  with T5's sentinels; None: the default vocabulary. Collections take it as a path, so a
  gin file can name it."""
  if path is None:
    return default_vocabulary()
  if not os.path.isfile(path):
    raise RegistrationError(f"vocabulary file {path}: not found (a T5 checkpoint's "
                            "spiece.model)")
  return seqio.SentencePieceVocabulary(str(path), extra_ids=extra_ids)


def matches_sentencepiece_file(vocabulary: seqio.Vocabulary, path: str) -> bool:
  """Whether `vocabulary` is a SentencePiece vocabulary with the pieces of the model file
  at `path`, id for id. seqio appends its extra ids (sentinels) as pieces; those are not
  in the file and are not compared."""
  import sentencepiece

  if not isinstance(vocabulary, seqio.SentencePieceVocabulary):
    return False
  ours = sentencepiece.SentencePieceProcessor(model_proto=vocabulary.sp_model)
  theirs = sentencepiece.SentencePieceProcessor(model_file=str(path))
  size = theirs.get_piece_size()
  return ours.get_piece_size() in (size, size + vocabulary.extra_ids) and all(
      ours.id_to_piece(i) == theirs.id_to_piece(i) for i in range(size))
