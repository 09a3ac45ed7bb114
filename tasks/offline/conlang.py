"""Velari: a small constructed language for the offline translation families.

No model has seen Velari before, so translating into or out of it has to be learned
from the collection itself. Its grammar differs from English on purpose:

- word order is time, subject, place, object, verb: "Ada saw the dog in Pelholm
  yesterday." -> "Te Ada Pelholm zo dado la vu pitimi ti.";
- adjectives and determiners follow the noun; "a" is not written, "the" is `la`;
- plural nouns add -n (every root ends in a vowel, so this never makes another word);
- the object is marked by the particle `vu`, negation `zu` precedes the verb, and the
  tense is a particle after it (past `ti`, future `ba`, present unmarked);
- verbs do not agree with their subject.

Sentences are built as `Sentence` structures and rendered into either language, and
each language parses back into the same structure, so both translation directions are
exact. The lexicon is drawn from syllables with a fixed seed: the same on every machine.
People's first names and town names are not translated.
"""

import dataclasses
import functools
import random
from typing import Dict, List, Optional, Tuple, Union

from flan_tune_tasks.offline import world as world_lib

LANGUAGE = "Velari"
LEXICON_SEED = 7031
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
PLURAL_SUFFIX = "n"

# Nouns by the kind of thing they are; verbs choose their objects by kind.
ANIMALS = ("cat", "dog", "parrot", "rabbit", "tortoise", "goat", "hedgehog", "canary",
           "ferret", "goose", "horse", "bird", "owl", "fox", "mouse")
PERSON_NOUNS = world_lib.JOBS + ("child", "friend", "neighbour")
FOOD_NOUNS = ("apple", "pear", "plum", "carrot", "fig", "bean", "mushroom", "pancake", "pie",
              "loaf", "cherry")
THING_NOUNS = ("letter", "book", "boat", "basket", "lantern", "bell", "clock", "map", "boot",
               "bottle", "jar", "cup", "flower", "key", "hat", "coat", "box")
INSTRUMENT_NOUNS = world_lib.INSTRUMENTS
IRREGULAR_PLURALS = {"goose": "geese", "mouse": "mice", "child": "children", "loaf": "loaves"}

# Adjectives for anything; adjectives for living things only; colours come last in English.
PLAIN_ADJECTIVES = ("big", "small", "old", "new", "tiny", "heavy", "wet")
LIVING_ADJECTIVES = ("young", "happy", "sleepy", "quiet", "loud", "clever", "kind", "lazy",
                     "brave")
ADJECTIVES = PLAIN_ADJECTIVES + LIVING_ADJECTIVES + world_lib.COLORS

PERSON, ANIMAL, THING, FOOD, INSTRUMENT = "person", "animal", "thing", "food", "instrument"
_LIVING = (PERSON, ANIMAL)
_ANY = (PERSON, ANIMAL, THING, FOOD, INSTRUMENT)
_GOODS = (THING, FOOD, INSTRUMENT)
# lemma -> (past tense, kinds of subject, kinds of object; () for an intransitive verb)
VERBS = {
    "see": ("saw", _LIVING, _ANY), "like": ("liked", _LIVING, _ANY),
    "find": ("found", _LIVING, _ANY), "want": ("wanted", _LIVING, _ANY),
    "watch": ("watched", _LIVING, _ANY),
    "hear": ("heard", _LIVING, (PERSON, ANIMAL, INSTRUMENT)),
    "follow": ("followed", _LIVING, _LIVING), "chase": ("chased", _LIVING, _LIVING),
    "eat": ("ate", _LIVING, (FOOD,)), "carry": ("carried", (PERSON,), _ANY),
    "paint": ("painted", (PERSON,), _ANY), "draw": ("drew", (PERSON,), _ANY),
    "lose": ("lost", (PERSON,), _GOODS), "hold": ("held", (PERSON,), _GOODS),
    "sell": ("sold", (PERSON,), _GOODS), "buy": ("bought", (PERSON,), _GOODS),
    "bring": ("brought", (PERSON,), (THING, FOOD)), "help": ("helped", (PERSON,), _LIVING),
    "visit": ("visited", (PERSON,), (PERSON,)), "call": ("called", (PERSON,), _LIVING),
    "meet": ("met", (PERSON,), (PERSON,)), "feed": ("fed", (PERSON,), _LIVING),
    "teach": ("taught", (PERSON,), _LIVING), "wash": ("washed", (PERSON,), (ANIMAL, THING)),
    "cook": ("cooked", (PERSON,), (FOOD,)), "play": ("played", (PERSON,), (INSTRUMENT,)),
    "sleep": ("slept", _LIVING, ()), "run": ("ran", _LIVING, ()),
    "walk": ("walked", _LIVING, ()), "rest": ("rested", _LIVING, ()),
    "wait": ("waited", _LIVING, ()), "swim": ("swam", _LIVING, ()),
    "sing": ("sang", (PERSON,), ()), "dance": ("danced", (PERSON,), ()),
    "laugh": ("laughed", (PERSON,), ()), "work": ("worked", (PERSON,), ()),
}

SINGULAR_DETERMINERS = ("the", "a")
PLURAL_DETERMINERS = ("the", "some", "two", "three", "four", "five")
TENSES = ("present", "past", "future")
TIME_WORDS = {"present": "today", "past": "yesterday", "future": "tomorrow"}
FUNCTION_WORDS = ("the", "some", "two", "three", "four", "five", "in", "not", "today",
                  "yesterday", "tomorrow")
# Grammatical particles with no English word of their own.
PARTICLES = ("<object>", "<past>", "<future>")


def _nouns_by_kind() -> Dict[str, Tuple[str, ...]]:
  return {PERSON: PERSON_NOUNS, ANIMAL: ANIMALS, THING: THING_NOUNS, FOOD: FOOD_NOUNS,
          INSTRUMENT: INSTRUMENT_NOUNS}


NOUNS = tuple(n for kind in _nouns_by_kind().values() for n in kind)
ENGLISH_WORDS = NOUNS + ADJECTIVES + tuple(VERBS) + FUNCTION_WORDS


@functools.cache
def _town_names() -> frozenset:
  return frozenset(t.name for t in world_lib.get_world().towns)


@functools.cache
def _proper_names() -> frozenset:
  """Words Velari keeps as they are."""
  return frozenset(world_lib.FIRST_NAMES) | _town_names()


@functools.cache
def lexicon() -> Dict[str, str]:
  """English word (or particle) -> Velari word; one-syllable words for function words.

  Drawn in a fixed order from a fixed seed, skipping any word already taken, any
  English word of the lexicon and any proper name, so no two entries share a word.
  """
  rng = random.Random(LEXICON_SEED)
  syllables = [c + v for c in _CONSONANTS for v in _VOWELS]
  banned = set(ENGLISH_WORDS) | {n.lower() for n in _proper_names()}
  taken, table = set(), {}
  for entry in ENGLISH_WORDS + PARTICLES:
    length = 1 if entry in FUNCTION_WORDS or entry in PARTICLES else rng.choice((2, 2, 3))
    while True:
      word = "".join(rng.choice(syllables) for _ in range(length))
      if word not in taken and word not in banned:
        break
    taken.add(word)
    table[entry] = word
  return table


@functools.cache
def _reverse_lexicon() -> Dict[str, str]:
  return {v: k for k, v in lexicon().items()}


def plural(noun: str) -> str:
  if noun in IRREGULAR_PLURALS:
    return IRREGULAR_PLURALS[noun]
  if noun.endswith(("s", "sh", "ch", "x")):
    return noun + "es"
  if noun.endswith("y") and noun[-2] not in "aeiou":
    return noun[:-1] + "ies"
  return noun + "s"


def third_person(verb: str) -> str:
  if verb.endswith(("s", "sh", "ch", "x", "o")):
    return verb + "es"
  if verb.endswith("y") and verb[-2] not in "aeiou":
    return verb[:-1] + "ies"
  return verb + "s"


@functools.cache
def _english_forms() -> Dict[str, Tuple[str, ...]]:
  """Every inflected English form -> what it is, for parsing; forms never overlap."""
  forms: Dict[str, Tuple[str, ...]] = {}

  def add(form, meaning):
    if form in forms:
      raise AssertionError(f"English form {form!r} is both {forms[form]} and {meaning}")
    forms[form] = meaning

  for noun in NOUNS:
    add(noun, ("noun", noun, False))
    add(plural(noun), ("noun", noun, True))
  for adjective in ADJECTIVES:
    add(adjective, ("adjective", adjective))
  for verb, (past, _, _) in VERBS.items():
    add(verb, ("verb", verb, "base"))
    add(third_person(verb), ("verb", verb, "present_singular"))
    add(past, ("verb", verb, "past"))
  return forms


@dataclasses.dataclass(frozen=True)
class NounPhrase:
  """A noun with its determiner and adjectives, or a person's first name."""
  head: str                          # a noun lemma or a first name
  plural: bool = False
  adjectives: Tuple[str, ...] = ()
  determiner: Optional[str] = None   # None exactly when `head` is a name

  @property
  def is_name(self) -> bool:
    return self.determiner is None


@dataclasses.dataclass(frozen=True)
class Sentence:
  subject: NounPhrase
  verb: str                          # lemma
  tense: str = "present"
  obj: Optional[NounPhrase] = None
  negated: bool = False
  town: Optional[str] = None         # "in {town}"
  time: Optional[str] = None         # today / yesterday / tomorrow, agreeing with the tense

  def lemmas(self) -> List[str]:
    """The lexicon words the sentence uses, in English order, without repeats."""
    words = []
    for phrase in (self.subject, self.obj):
      if phrase is not None and not phrase.is_name:
        words += [phrase.determiner, *phrase.adjectives, phrase.head]
    words += ["not"] * self.negated + [self.verb] + ["in"] * bool(self.town)
    words += [self.time] if self.time else []
    return [w for i, w in enumerate(words) if w in lexicon() and w not in words[:i]]


def _capitalize(text: str) -> str:
  return text[:1].upper() + text[1:]


# ---------------------------------------------------------------------------- English


def _english_phrase(phrase: NounPhrase) -> List[str]:
  if phrase.is_name:
    return [phrase.head]
  words = [*phrase.adjectives, plural(phrase.head) if phrase.plural else phrase.head]
  article = phrase.determiner
  if article == "a" and words[0][0] in "aeiou":
    article = "an"
  return [article] + words


def _english_verb(sentence: Sentence) -> List[str]:
  verb, singular = sentence.verb, not sentence.subject.plural
  if sentence.tense == "future":
    return ["will", "not", verb] if sentence.negated else ["will", verb]
  if sentence.tense == "past":
    return ["did", "not", verb] if sentence.negated else [VERBS[verb][0]]
  if sentence.negated:
    return ["does" if singular else "do", "not", verb]
  return [third_person(verb) if singular else verb]


def to_english(sentence: Sentence) -> str:
  words = _english_phrase(sentence.subject) + _english_verb(sentence)
  if sentence.obj is not None:
    words += _english_phrase(sentence.obj)
  if sentence.town:
    words += ["in", sentence.town]
  if sentence.time:
    words.append(sentence.time)
  return _capitalize(" ".join(words)) + "."


class _Tokens:
  """A cursor over the words of one sentence, for the two parsers."""

  def __init__(self, text: str, names: frozenset):
    text = text.strip()
    if not text.endswith("."):
      raise ValueError(f"a sentence ends with a period: {text!r}")
    self.words = text[:-1].split()
    if self.words and self.words[0] not in names:
      self.words[0] = self.words[0][:1].lower() + self.words[0][1:]
    self.position = 0
    self.text = text

  def peek(self) -> Optional[str]:
    return self.words[self.position] if self.position < len(self.words) else None

  def take(self) -> str:
    word = self.peek()
    if word is None:
      raise ValueError(f"sentence ends too early: {self.text!r}")
    self.position += 1
    return word

  def fail(self, what: str, taken: bool = False):
    """Raises naming the next word, or the word just taken if `taken`."""
    position = self.position - taken
    word = self.words[position] if position < len(self.words) else None
    raise ValueError(f"expected {what} at word {position} of {self.text!r}, got {word!r}")


def _parse_english_phrase(tokens: _Tokens, names: frozenset) -> NounPhrase:
  word = tokens.take()
  if word in names:
    return NounPhrase(word)
  determiner = "a" if word == "an" else word
  if determiner not in SINGULAR_DETERMINERS + PLURAL_DETERMINERS:
    tokens.fail("a determiner or a name", taken=True)
  adjectives = []
  while _english_forms().get(tokens.peek(), ("",))[0] == "adjective":
    adjectives.append(tokens.take())
  meaning = _english_forms().get(tokens.peek())
  if not meaning or meaning[0] != "noun":
    tokens.fail("a noun")
  tokens.take()
  return NounPhrase(meaning[1], meaning[2], tuple(adjectives), determiner)


def parse_english(text: str) -> Sentence:
  """The structure of an English sentence `to_english` wrote; ValueError otherwise."""
  names, towns = _proper_names(), _town_names()
  tokens = _Tokens(text, names)
  subject = _parse_english_phrase(tokens, names)
  negated, tense = False, "present"
  word = tokens.take()
  if word == "will":
    tense, word = "future", tokens.take()
  elif word in ("did", "does", "do"):
    tense = "past" if word == "did" else "present"
    word = tokens.take()
    if word != "not":
      tokens.fail("'not'", taken=True)
    negated, word = True, tokens.take()
  if word == "not" and tense == "future":
    negated, word = True, tokens.take()
  meaning = _english_forms().get(word)
  if not meaning or meaning[0] != "verb":
    tokens.fail("a verb", taken=True)
  if meaning[2] == "past" and not negated and tense == "present":
    tense = "past"
  obj = None
  if tokens.peek() is not None and tokens.peek() != "in" and (
      tokens.peek() not in TIME_WORDS.values()):
    obj = _parse_english_phrase(tokens, names)
  town = None
  if tokens.peek() == "in":
    tokens.take()
    town = tokens.take()
    if town not in towns:
      tokens.fail("a town", taken=True)
  time = tokens.take() if tokens.peek() in TIME_WORDS.values() else None
  if tokens.peek() is not None:
    tokens.fail("the end of the sentence")
  return Sentence(subject, meaning[1], tense, obj, negated, town, time)


# ---------------------------------------------------------------------------- Velari


def _velari_phrase(phrase: NounPhrase) -> List[str]:
  if phrase.is_name:
    return [phrase.head]
  words = [lexicon()[phrase.head] + PLURAL_SUFFIX * phrase.plural]
  words += [lexicon()[a] for a in phrase.adjectives]
  if phrase.determiner != "a":
    words.append(lexicon()[phrase.determiner])
  return words


def to_velari(sentence: Sentence) -> str:
  words = [lexicon()[sentence.time]] if sentence.time else []
  words += _velari_phrase(sentence.subject)
  if sentence.town:
    words += [sentence.town, lexicon()["in"]]
  if sentence.obj is not None:
    words += _velari_phrase(sentence.obj) + [lexicon()["<object>"]]
  if sentence.negated:
    words.append(lexicon()["not"])
  words.append(lexicon()[sentence.verb])
  if sentence.tense != "present":
    words.append(lexicon()[f"<{sentence.tense}>"])
  return _capitalize(" ".join(words)) + "."


def _velari_meaning(word: Optional[str]) -> Tuple[str, str, bool]:
  """(English lemma, category, plural) of a Velari word; ("", "", False) if unknown."""
  reverse = _reverse_lexicon()
  if word is None:
    return "", "", False
  if word in reverse:
    entry = reverse[word]
  elif word.endswith(PLURAL_SUFFIX) and reverse.get(word[:-1]) in NOUNS:
    return reverse[word[:-1]], "noun", True
  else:
    return "", "", False
  if entry in NOUNS:
    return entry, "noun", False
  if entry in ADJECTIVES:
    return entry, "adjective", False
  if entry in VERBS:
    return entry, "verb", False
  return entry, "function", False


def _parse_velari_phrase(tokens: _Tokens, names: frozenset) -> NounPhrase:
  word = tokens.take()
  if word in names:
    return NounPhrase(word)
  head, category, is_plural = _velari_meaning(word)
  if category != "noun":
    tokens.fail("a noun or a name", taken=True)
  adjectives = []
  while _velari_meaning(tokens.peek())[1] == "adjective":
    adjectives.append(_velari_meaning(tokens.take())[0])
  determiner = _velari_meaning(tokens.peek())[0]
  if determiner in (PLURAL_DETERMINERS if is_plural else SINGULAR_DETERMINERS):
    tokens.take()
  elif is_plural:
    tokens.fail("a determiner after a plural noun")
  else:
    determiner = "a"  # Velari does not write the indefinite article
  return NounPhrase(head, is_plural, tuple(adjectives), determiner)


def parse_velari(text: str) -> Sentence:
  """The structure of a Velari sentence `to_velari` wrote; ValueError otherwise."""
  names, towns = _proper_names(), _town_names()
  tokens = _Tokens(text, names)
  time = None
  if _velari_meaning(tokens.peek())[0] in TIME_WORDS.values():
    time = _velari_meaning(tokens.take())[0]
  subject = _parse_velari_phrase(tokens, names)
  town = None
  if tokens.peek() in towns:
    town = tokens.take()
    if tokens.take() != lexicon()["in"]:
      tokens.fail(f"{lexicon()['in']!r} after a town", taken=True)
  obj = None
  if tokens.peek() in names or _velari_meaning(tokens.peek())[1] == "noun":
    obj = _parse_velari_phrase(tokens, names)
    if tokens.take() != lexicon()["<object>"]:
      tokens.fail("the object particle", taken=True)
  negated = tokens.peek() == lexicon()["not"]
  if negated:
    tokens.take()
  verb, category, _ = _velari_meaning(tokens.take())
  if category != "verb":
    tokens.fail("a verb", taken=True)
  tense = "present"
  particle = _velari_meaning(tokens.peek())[0]
  if particle in ("<past>", "<future>"):
    tense = particle.strip("<>")
    tokens.take()
  if tokens.peek() is not None:
    tokens.fail("the end of the sentence")
  return Sentence(subject, verb, tense, obj, negated, town, time)


def translate(text: Union[str, Sentence], to: str = LANGUAGE) -> str:
  """Translates into `to` ("Velari" or "English"): a Sentence, or a sentence in the
  other language."""
  if to not in (LANGUAGE, "English"):
    raise ValueError(f"translate to {LANGUAGE!r} or 'English', not {to!r}")
  if isinstance(text, str):
    text = parse_english(text) if to == LANGUAGE else parse_velari(text)
  return to_velari(text) if to == LANGUAGE else to_english(text)


def glossary(sentence: Sentence) -> str:
  """The dictionary entries a sentence needs, e.g. "dog = karu; see = miru"."""
  return "; ".join(f"{w} = {lexicon()[w]}" for w in sentence.lemmas())


# ---------------------------------------------------------------------------- sampling


def _random_phrase(rng: random.Random, kind: str, names: Tuple[str, ...] = ()) -> NounPhrase:
  """A noun phrase of a kind of thing, or one of `names` for a person."""
  if kind == PERSON and names and rng.random() < 0.5:
    return NounPhrase(rng.choice(names))
  head = rng.choice(_nouns_by_kind()[kind])
  is_plural = rng.random() < 0.4
  determiner = rng.choice(PLURAL_DETERMINERS if is_plural else SINGULAR_DETERMINERS)
  qualities = PLAIN_ADJECTIVES + (LIVING_ADJECTIVES if kind in _LIVING else ())
  adjectives = (rng.choice(qualities),) if rng.random() < 0.4 else ()
  if rng.random() < 0.3:
    adjectives += (rng.choice(world_lib.COLORS),)
  return NounPhrase(head, is_plural, adjectives, determiner)


def random_sentence(rng: random.Random) -> Sentence:
  """A sentence about the world: its people keep to their own towns, pets and
  instruments when the sentence names them."""
  world = world_lib.get_world()
  person = rng.choice(world.people)
  verb = rng.choice(sorted(VERBS))
  _, subject_kinds, object_kinds = VERBS[verb]
  if rng.random() < 0.5:
    subject = NounPhrase(person.first_name)
  else:
    subject = _random_phrase(rng, rng.choice(subject_kinds))
  obj = None
  if object_kinds:
    kind = rng.choice(object_kinds)
    own = {INSTRUMENT: person.instrument, ANIMAL: person.pet}.get(kind)
    if subject.is_name and own and rng.random() < 0.5:
      obj = NounPhrase(own, False, (), "the")
    else:
      names = tuple(n for n in world_lib.FIRST_NAMES if n != subject.head)
      obj = _random_phrase(rng, kind, names)
  tense = rng.choice(TENSES)
  town = person.town if subject.is_name and rng.random() < 0.4 else None
  time = TIME_WORDS[tense] if rng.random() < 0.3 else None
  return Sentence(subject, verb, tense, obj, rng.random() < 0.2, town, time)
