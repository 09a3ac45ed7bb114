"""Instruction datasets people already have as JSONL: Alpaca, Dolly and OpenAssistant.

Each `*_task` function registers one instruction task over the files (a path, a list
of paths, or {split: path(s)}; a bare path or list is the "train" split, so the
few-shot styles are available) and returns the seqio task names. Records are read once,
in Python, so a malformed line fails with its file and line before any tf.data graph
runs. The functions are gin configurables: a gin file imports this module and binds
their parameters.
"""

import dataclasses
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import gin

from flan_tune.errors import RegistrationError, SourceError
from flan_tune.tasks import Template, register_task
from flan_tune.tasks import metrics, postprocessors
from flan_tune.tasks.sources import LoadedJsonlSource, Paths, normalize_value
from flan_tune.tasks.templates import validate_templates

Files = Union[Paths, Mapping[str, Paths]]
# Open-ended generation has no single right answer; ROUGE rewards overlap with the reference.
DEFAULT_METRIC_FNS = (metrics.rouge,)
# Self-Instruct style data marks an absent input with a placeholder instead of "".
_NO_INPUT_MARKERS = frozenset({"", "<noinput>", "noinput", "<no input>", "no input"})
USER, ASSISTANT = "User", "Assistant"
_ROLES = {"prompter": USER, "assistant": ASSISTANT}


def _as_splits(files: Files) -> Dict[str, Paths]:
  """A bare path or list of paths is the train split, so few-shot styles exist."""
  if isinstance(files, Mapping):
    return dict(files)
  return {"train": files}


def _text(raw: Mapping[str, Any], key: str, origin: str, required: bool = True) -> str:
  """A string column; missing or null optional columns read as empty."""
  if key not in raw or raw[key] is None:
    if required:
      raise SourceError(f"{origin}: missing key {key!r}; the record has {sorted(raw)}")
    return ""
  value = normalize_value(raw[key], origin, key)
  if not isinstance(value, str):
    raise SourceError(f"{origin}: {key!r} must be a string, got {type(raw[key]).__name__}")
  if required and not value.strip():
    raise SourceError(f"{origin}: {key!r} is empty")
  return value


class _ColumnsSource(LoadedJsonlSource):
  """JSONL whose records keep only known text columns, so extra keys never disagree."""
  REQUIRED: Sequence[str] = ()
  OPTIONAL: Sequence[str] = ()

  def _read(self, split):
    for origin, raw in super()._read(split):
      if not isinstance(raw, Mapping):
        raise SourceError(f"{origin}: expected a JSON object, got {type(raw).__name__}")
      record = {key: _text(raw, key, origin) for key in self.REQUIRED}
      record.update({key: _text(raw, key, origin, required=False) for key in self.OPTIONAL})
      yield origin, record


class AlpacaSource(_ColumnsSource):
  """Alpaca / Self-Instruct records: `instruction`, `output` and an optional `input`."""
  REQUIRED = ("instruction", "output")
  OPTIONAL = ("input",)


class DollySource(_ColumnsSource):
  """databricks-dolly records, optionally only some categories.

  The first read loads every split, so a category that none of the files contain is an
  error that lists the categories they do contain, not a silently empty task.
  """
  REQUIRED = ("instruction", "response", "category")
  OPTIONAL = ("context",)

  def __init__(self, files: Mapping[str, Paths], categories: Optional[Sequence[str]] = None):
    super().__init__(files)
    if isinstance(categories, str):
      categories = [categories]
    self.categories = None if categories is None else frozenset(categories)
    self._seen_categories = set()

  def records(self, split: str) -> list:
    if self.categories is not None:
      for each in self.splits:
        super().records(each)
      unknown = sorted(self.categories - self._seen_categories)
      if unknown:
        raise SourceError(f"{self!r}: unknown categories {unknown}; the files contain "
                          f"{sorted(self._seen_categories)}")
    return super().records(split)

  def _read(self, split):
    for origin, record in super()._read(split):
      self._seen_categories.add(record["category"])
      if self.categories is None or record["category"] in self.categories:
        yield origin, record


def _request_fields(instruction: str, extra: str, extra_label: str) -> dict:
  """The request with and without labels; `extra` (input, context) may be empty."""
  instruction = instruction.strip()
  extra = "" if extra.strip().lower() in _NO_INPUT_MARKERS else extra.strip()
  if not extra:
    return {"prompt": instruction, "labeled_prompt": f"Instruction: {instruction}"}
  return {"prompt": f"{instruction}\n\n{extra}",
          "labeled_prompt": f"Instruction: {instruction}\n{extra_label}: {extra}"}


def alpaca_fields(raw: Mapping[str, Any]) -> dict:
  """example_fn: Alpaca columns plus `prompt` and `labeled_prompt` (see _request_fields)."""
  fields = {key: raw[key] for key in ("instruction", "input", "output")}
  return {**fields, **_request_fields(raw["instruction"], raw["input"], "Input")}


def dolly_fields(raw: Mapping[str, Any]) -> dict:
  """example_fn: Dolly columns plus `prompt` and `labeled_prompt` (see _request_fields)."""
  fields = {key: raw[key] for key in ("instruction", "context", "response", "category")}
  return {**fields, **_request_fields(raw["instruction"], raw["context"], "Context")}


def request_templates(target: str) -> List[Template]:
  """Templates over `prompt`/`labeled_prompt`, which read well with or without an input."""
  return [
      Template("{prompt}", f"{{{target}}}"),
      Template("{labeled_prompt}\nResponse:", f"{{{target}}}"),
      Template("Carry out the request below.\n\n{prompt}", f"{{{target}}}"),
      Template("Request:\n{prompt}\n\nA helpful answer to this request:", f"{{{target}}}"),
      Template("{prompt}\n\nAnswer:", f"{{{target}}}"),
      Template(f"Here is a response:\n{{{target}}}\n\nWrite the request it answers.",
               "{prompt}", inverted=True),
      Template(f"Someone wrote this answer:\n{{{target}}}\n\nWhat were they asked to do?",
               "{prompt}", inverted=True),
  ]


ALPACA_FIELDS = frozenset({"instruction", "input", "output", "prompt", "labeled_prompt"})
DOLLY_FIELDS = frozenset({"instruction", "context", "response", "category", "prompt",
                          "labeled_prompt"})


def _register(name: str, source, example_fn: Callable, known_fields: frozenset,
              templates: Optional[Sequence[Template]], default_templates: Sequence[Template],
              **task_fields) -> List[str]:
  # register_task cannot see the fields an example_fn makes; check templates against them
  # here so a typo fails at registration instead of at the first rendered example.
  templates = default_templates if templates is None else templates
  validate_templates(name, list(templates), False, known_fields)
  return register_task(name=name, source=source, example_fn=example_fn,
                       templates=list(templates), **task_fields)


@gin.configurable
def alpaca_task(name: str, files: Files, *, cluster: str = "instruction_following",
                collection: str = "instruct", seed: int = 0,
                styles: Optional[Sequence[str]] = None,
                templates: Optional[Sequence[Template]] = None,
                metric_fns: Sequence[Callable] = DEFAULT_METRIC_FNS,
                postprocess_fn: Optional[Callable] = postprocessors.strip,
                **task_fields) -> List[str]:
  """Registers an Alpaca / Self-Instruct JSONL task; returns its seqio task names.

  Templates see `instruction`, `input`, `output`, `prompt` (the instruction, then the
  input after a blank line when there is one) and `labeled_prompt` ("Instruction: ...",
  plus "\\nInput: ..." when there is one). `task_fields` go to `InstructionTask`.
  """
  return _register(name, AlpacaSource(_as_splits(files)), alpaca_fields, ALPACA_FIELDS,
                   templates, request_templates("output"), cluster=cluster, collection=collection,
                   seed=seed, styles=styles, metric_fns=metric_fns, postprocess_fn=postprocess_fn,
                   **task_fields)


@gin.configurable
def dolly_task(name: str, files: Files, *, categories: Optional[Sequence[str]] = None,
               cluster: str = "instruction_following", collection: str = "instruct",
               seed: int = 0, styles: Optional[Sequence[str]] = None,
               templates: Optional[Sequence[Template]] = None,
               metric_fns: Sequence[Callable] = DEFAULT_METRIC_FNS,
               postprocess_fn: Optional[Callable] = postprocessors.strip,
               **task_fields) -> List[str]:
  """Registers a databricks-dolly JSONL task; returns its seqio task names.

  `categories` keeps only those categories; the files are read now so an unknown name
  fails here, listing the categories the files contain. Templates see `instruction`,
  `context`, `response`, `category`, `prompt` and `labeled_prompt` (as for Alpaca, with
  the context in place of the input).
  """
  source = DollySource(_as_splits(files), categories)
  if categories is not None:
    source.records(source.splits[0])
  return _register(name, source, dolly_fields, DOLLY_FIELDS, templates,
                   request_templates("response"), cluster=cluster, collection=collection,
                   seed=seed, styles=styles, metric_fns=metric_fns, postprocess_fn=postprocess_fn,
                   **task_fields)


@dataclasses.dataclass(eq=False)
class _Message:
  """One conversation message, validated, with where it came from for later errors."""
  message_id: str
  parent_id: Optional[str]
  role: str
  text: str
  lang: str
  rank: Optional[int]
  tree_id: str
  origin: str
  children: list = dataclasses.field(default_factory=list)


class OpenAssistantSource(LoadedJsonlSource):
  """OpenAssistant conversation trees flattened to one record per assistant message.

  Reads both published shapes, also mixed: message lists (one message per line, linked
  by `parent_id`) and trees (one `{"prompt": {..., "replies": [...]}}` per line). A
  record has `history` (the earlier turns as "User: ..." / "Assistant: ..." lines),
  `prompt` (the parent prompter message), `reply`, `lang`, `message_id` and
  `message_tree_id`. Structural mistakes name the file, line and message.

  Args:
    files: {split: path(s)}.
    lang: keep replies in this language (or these languages); a message without `lang`
      takes its parent's.
    best_only: keep a reply only if it and every assistant turn in its history is the best
      ranked among its siblings (lowest `rank`; when no sibling has a rank, all count).
    max_history_turns: keep at most this many of the latest history messages.
  """

  def __init__(self, files: Mapping[str, Paths], *,
               lang: Optional[Union[str, Sequence[str]]] = None, best_only: bool = False,
               max_history_turns: Optional[int] = None):
    if max_history_turns is not None and (not isinstance(max_history_turns, int)
                                          or max_history_turns < 0):
      raise RegistrationError(f"max_history_turns must be None or an integer >= 0, "
                              f"got {max_history_turns!r}")
    super().__init__(files)
    self.langs = None if lang is None else frozenset([lang] if isinstance(lang, str) else lang)
    self.best_only = best_only
    self.max_history_turns = max_history_turns

  def _read(self, split):
    messages = self._parse(split)
    self._link(messages)
    best = self._best_replies(messages.values())
    for message in messages.values():
      if message.role != "assistant":
        continue
      path = self._path(message, messages)
      if self.best_only and not all(m.message_id in best for m in path
                                    if m.role == "assistant"):
        continue
      lang = next((m.lang for m in reversed(path) if m.lang), "")
      if self.langs is not None and lang not in self.langs:
        continue
      *earlier, prompt, reply = path
      if self.max_history_turns is not None:
        earlier = earlier[-self.max_history_turns:] if self.max_history_turns else []
      history = "\n".join(f"{_ROLES[m.role]}: {m.text}" for m in earlier)
      yield message.origin, {
          "history": history, "prompt": prompt.text, "reply": reply.text, "lang": lang,
          "message_id": message.message_id,
          "message_tree_id": next((m.tree_id for m in path if m.tree_id), path[0].message_id)}

  def _parse(self, split) -> Dict[str, _Message]:
    """Every message of a split by id, in file order (tree lines depth first)."""
    messages: Dict[str, _Message] = {}

    def add(raw, origin, parent: Optional[_Message], tree_id: Optional[str], in_tree: bool):
      message = _message(raw, origin, parent, tree_id, in_tree)
      if message.message_id in messages:
        raise SourceError(f"{message.origin}: duplicate message_id; first seen at "
                          f"{messages[message.message_id].origin}")
      messages[message.message_id] = message
      return message

    for origin, raw in super()._read(split):
      if not isinstance(raw, Mapping):
        raise SourceError(f"{origin}: expected a JSON object, got {type(raw).__name__}")
      if "message_id" in raw or "prompt" not in raw:
        add(raw, origin, None, None, in_tree=False)
        continue
      if not isinstance(raw["prompt"], Mapping):
        raise SourceError(f"{origin}: 'prompt' must be a message object")
      tree_id = "" if raw.get("message_tree_id") is None else str(raw["message_tree_id"])
      stack = [(raw["prompt"], None)]
      while stack:
        node, parent = stack.pop()
        message = add(node, origin, parent, tree_id, in_tree=True)
        replies = node.get("replies", [])
        if not isinstance(replies, list) or not all(isinstance(r, Mapping) for r in replies):
          raise SourceError(f"{message.origin}: 'replies' must be a list of message objects")
        stack.extend((reply, message) for reply in reversed(replies))
    return messages

  @staticmethod
  def _link(messages: Mapping[str, _Message]) -> None:
    """Checks parents, roles and cycles, and fills in each message's children."""
    for message in messages.values():
      if message.parent_id is None:
        if message.role != "prompter":
          raise SourceError(f"{message.origin}: a conversation must start with a prompter "
                            f"message, but this root is {message.role!r}")
        continue
      if message.parent_id == message.message_id:
        raise SourceError(f"{message.origin}: parent_id chain loops (the message is its "
                          "own parent)")
      parent = messages.get(message.parent_id)
      if parent is None:
        raise SourceError(f"{message.origin}: parent_id {message.parent_id!r} never appears")
      if parent.role == message.role:
        raise SourceError(f"{message.origin}: roles must alternate, but this {message.role} "
                          f"message replies to {message.role} message {parent.message_id!r}")
      parent.children.append(message)
    reaches_root = set()
    for message in messages.values():
      chain, current = [], message
      while current.message_id not in reaches_root and current.parent_id is not None:
        if current.message_id in chain:
          loop = chain[chain.index(current.message_id):] + [current.message_id]
          raise SourceError(f"{current.origin}: parent_id chain loops ({' -> '.join(loop)})")
        chain.append(current.message_id)
        current = messages[current.parent_id]
      reaches_root.update(chain)

  @staticmethod
  def _best_replies(messages: Iterable[_Message]) -> set:
    """Ids of the best ranked assistant reply of each prompter message (all if unranked)."""
    best = set()
    for message in messages:
      replies = [m for m in message.children if m.role == "assistant"]
      ranked = [m for m in replies if m.rank is not None]
      if ranked:
        best.add(min(ranked, key=lambda m: m.rank).message_id)
      else:
        best.update(m.message_id for m in replies)
    return best

  @staticmethod
  def _path(message: _Message, messages: Mapping[str, _Message]) -> List[_Message]:
    """The messages from the root down to `message` (links were checked by _link)."""
    path = [message]
    while path[-1].parent_id is not None:
      path.append(messages[path[-1].parent_id])
    return path[::-1]


def _message(raw: Mapping[str, Any], line_origin: str, parent: Optional[_Message],
             tree_id: Optional[str], in_tree: bool) -> _Message:
  """One validated message; inside a tree line the nesting gives the parent, not parent_id."""
  if not isinstance(raw, Mapping):
    raise SourceError(f"{line_origin}: expected a message object, got {type(raw).__name__}")
  if raw.get("message_id") is None:
    raise SourceError(f"{line_origin}: missing key 'message_id'; the message has {sorted(raw)}")
  message_id = str(raw["message_id"])
  origin = f"{line_origin} (message {message_id})"
  for key in ("role", "text") if in_tree else ("parent_id", "role", "text"):
    if key not in raw:
      raise SourceError(f"{origin}: missing key {key!r}; the message has {sorted(raw)}")
  if raw["role"] not in _ROLES:
    raise SourceError(f"{origin}: role must be one of {sorted(_ROLES)}, got {raw['role']!r}")
  text = _text(raw, "text", origin)
  rank = raw.get("rank")
  if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int)):
    raise SourceError(f"{origin}: rank must be an integer or null, got {rank!r}")
  if in_tree:
    parent_id = parent.message_id if parent is not None else None
  else:
    parent_id = None if raw["parent_id"] is None else str(raw["parent_id"])
  tree = raw.get("message_tree_id") or tree_id or ""
  return _Message(message_id=message_id, parent_id=parent_id, role=raw["role"], text=text,
                  lang=str(raw.get("lang") or ""), rank=rank, tree_id=str(tree), origin=origin)


def open_assistant_fields(raw: Mapping[str, Any]) -> dict:
  """example_fn: the record plus `conversation` and `prior_turns` (empty without history)."""
  fields = {key: raw[key] for key in ("history", "prompt", "reply", "lang", "message_id",
                                      "message_tree_id")}
  turn = f"{USER}: {raw['prompt']}"
  history = raw["history"]
  fields["conversation"] = f"{history}\n{turn}" if history else turn
  fields["prior_turns"] = f"Earlier turns:\n{history}\n\n" if history else ""
  return fields


OPEN_ASSISTANT_FIELDS = frozenset({"history", "prompt", "reply", "lang", "message_id",
                                   "message_tree_id", "conversation", "prior_turns"})
OPEN_ASSISTANT_TEMPLATES = (
    Template(f"{{conversation}}\n{ASSISTANT}:", "{reply}"),
    Template("Continue this conversation as the assistant.\n\n{conversation}", "{reply}"),
    Template("{prior_turns}Reply to this message:\n{prompt}", "{reply}"),
    Template("Below is a chat between a user and a helpful assistant.\n\n{conversation}\n\n"
             "Write the assistant's next message.", "{reply}"),
    Template("{prior_turns}An assistant wrote this reply:\n{reply}\n\n"
             "What was the user's message?", "{prompt}", inverted=True),
)


@gin.configurable
def open_assistant_task(name: str, files: Files, *,
                        lang: Optional[Union[str, Sequence[str]]] = None,
                        best_only: bool = False, max_history_turns: Optional[int] = None,
                        cluster: str = "dialogue", collection: str = "instruct",
                        seed: int = 0, styles: Optional[Sequence[str]] = None,
                        templates: Optional[Sequence[Template]] = None,
                        metric_fns: Sequence[Callable] = DEFAULT_METRIC_FNS,
                        postprocess_fn: Optional[Callable] = postprocessors.strip,
                        **task_fields) -> List[str]:
  """Registers an OpenAssistant JSONL task (message lists or trees); returns seqio names.

  One example per assistant message (see `OpenAssistantSource` for the options).
  Templates see the source's fields plus `conversation` (history and the prompt as
  "User: ..." lines) and `prior_turns` ("Earlier turns:\\n<history>\\n\\n", or empty).
  """
  source = OpenAssistantSource(_as_splits(files), lang=lang, best_only=best_only,
                               max_history_turns=max_history_turns)
  return _register(name, source, open_assistant_fields, OPEN_ASSISTANT_FIELDS, templates,
                   OPEN_ASSISTANT_TEMPLATES, cluster=cluster, collection=collection,
                   seed=seed, styles=styles, metric_fns=metric_fns, postprocess_fn=postprocess_fn,
                   **task_fields)
