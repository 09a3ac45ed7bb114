"""The vocabulary tasks use unless they name one."""

import functools

import seqio


@functools.cache
def default_vocabulary() -> seqio.Vocabulary:
  """Byte-level until a collection ships its SentencePiece model; needs no files."""
  return seqio.ByteVocabulary()


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
