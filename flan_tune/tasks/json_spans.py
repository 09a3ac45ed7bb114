"""Byte spans of the items of one array inside a large JSON object, found without parsing it.

A Natural Instructions task file is one JSON object whose `Instances` array holds
thousands of examples. Parsing 1,600 such files at registration takes minutes; finding
where each instance starts and ends takes a vectorized pass over the few structural
characters (quotes, backslashes, brackets), after which instance i is parsed alone when
it is read. Pure numpy: input workers import this module.
"""

import json
from typing import Any

import numpy as np

from flan_tune.errors import SourceError

_OPEN = {ord("{"), ord("[")}
_STRUCTURAL = np.zeros(256, bool)
_STRUCTURAL[[ord("{"), ord("}"), ord("["), ord("]")]] = True


def _real_quotes(buf: np.ndarray) -> np.ndarray:
  """Positions of the quotes that open or close strings (not escaped by an odd run of
  backslashes)."""
  quotes = np.flatnonzero(buf == ord('"'))
  slashes = np.flatnonzero(buf == ord("\\"))
  if not len(slashes) or not len(quotes):
    return quotes
  breaks = np.flatnonzero(np.diff(slashes) != 1)
  run_starts = slashes[np.concatenate([[0], breaks + 1])]
  run_ends = slashes[np.concatenate([breaks, [len(slashes) - 1]])]
  at = np.minimum(np.searchsorted(run_ends, quotes - 1), len(run_ends) - 1)
  escaped = (run_ends[at] == quotes - 1) & ((run_ends[at] - run_starts[at] + 1) % 2 == 1)
  return quotes[~escaped]


def _line_of(data: bytes, offset: int) -> int:
  return data.count(b"\n", 0, offset) + 1


def array_item_spans(data: bytes, key: str, where: str) -> tuple[np.ndarray, dict]:
  """([n, 2] int64 [start, end) spans of the items of the array at top-level `key`, the
  object's other keys parsed). Raises SourceError naming `where` and the line when the
  text is not such an object."""
  buf = np.frombuffer(data, np.uint8)
  quotes = _real_quotes(buf)
  if len(quotes) % 2:
    raise SourceError(f"{where}:{_line_of(data, int(quotes[-1]))}: malformed JSON (a string "
                      "is not closed)")
  brackets = np.flatnonzero(_STRUCTURAL[buf])
  brackets = brackets[np.searchsorted(quotes, brackets) % 2 == 0]  # outside strings
  chars = buf[brackets]
  delta = np.where(np.isin(chars, list(_OPEN)), 1, -1)
  depth_after = np.cumsum(delta)
  if not len(brackets) or chars[0] != ord("{") or depth_after[-1] != 0 or (
      depth_after[:-1] <= 0).any() or (depth_after < 0).any():
    early = np.flatnonzero(depth_after[:-1] <= 0)
    at = int(brackets[early[0]]) if len(early) else len(data)
    raise SourceError(f"{where}:{_line_of(data, at)}: malformed JSON (brackets do not "
                      "balance into one object)")
  opener = _key_array(data, key, quotes, brackets, depth_after, where)
  close = opener + 1 + int(np.argmax(depth_after[opener + 1:] == 1))
  inside = slice(opener + 1, close)
  depth_before = depth_after[inside] - delta[inside]
  starts = brackets[inside][(delta[inside] == 1) & (depth_before == 2)]
  ends = brackets[inside][(delta[inside] == -1) & (depth_after[inside] == 2)] + 1
  head, tail = data[:brackets[opener]], data[brackets[close] + 1:]
  try:
    others = json.loads(head + b"[]" + tail)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    position = getattr(e, "pos", 0)
    position += 0 if position < len(head) else int(brackets[close]) - len(head) - 1
    raise SourceError(f"{where}:{_line_of(data, position)}: malformed JSON "
                      f"({getattr(e, 'msg', e)})") from None
  if len(starts) != len(ends) or _has_bare_items(buf, brackets, opener, close, starts, ends):
    raise SourceError(f"{where}: every item of {key!r} must be a JSON object or array")
  return np.stack([starts, ends], axis=1).astype(np.int64).reshape(-1, 2), others


def _key_array(data: bytes, key: str, quotes, brackets, depth_after, where: str) -> int:
  """Index (into `brackets`) of the '[' that opens the top-level `key`'s value."""
  needle = json.dumps(key).encode()
  position = data.find(needle)
  while position >= 0:
    opens_string = np.searchsorted(quotes, position) % 2 == 0 and (
        position < len(data) and quotes[np.searchsorted(quotes, position)] == position)
    before = np.searchsorted(brackets, position) - 1
    if opens_string and before >= 0 and depth_after[before] == 1:
      after = before + 1
      gap = data[position + len(needle):brackets[after]] if after < len(brackets) else b""
      if gap.strip() == b":" and data[brackets[after]] == ord("["):
        return after
      raise SourceError(f"{where}:{_line_of(data, position)}: {key!r} must be a JSON array")
    position = data.find(needle, position + 1)
  raise SourceError(f"{where}: no top-level {key!r} array")


_SEPARATOR = np.zeros(256, bool)
_SEPARATOR[[ord(" "), ord("\t"), ord("\r"), ord("\n"), ord(",")]] = True


def _has_bare_items(buf: np.ndarray, brackets, opener: int, close: int, starts,
                    ends) -> bool:
  """Whether the array holds anything but bracketed items (numbers, strings, ...): the
  gaps between items must be whitespace and one comma each."""
  lows = np.concatenate([[brackets[opener] + 1], ends])
  highs = np.concatenate([starts, [brackets[close]]])
  sizes = highs - lows
  if (sizes < 0).any():
    return True
  positions = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
  gaps = buf[positions + np.repeat(lows, sizes)]
  return not _SEPARATOR[gaps].all() or int((gaps == ord(",")).sum()) != max(len(starts) - 1, 0)


def parse_item(data: bytes, where: str) -> Any:
  try:
    return json.loads(data)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise SourceError(f"{where}: invalid JSON ({getattr(e, 'msg', e)})") from None
