"""Offline classification families: NLI, sentiment, topic, paraphrase and coreference.

Every family builds its examples from the shared world (`world.get_world()`), so the people
and towns a model classifies here are the ones the corpus describes, and every label can be
recomputed from the world's facts. The phrase tables are module constants so that
tests/test_offline_classification.py can parse the texts back and check each label.
"""

import functools
import random
from typing import Dict, NamedTuple, Sequence, Tuple

from flan_tune.tasks import Template
from flan_tune_tasks.offline import world
from flan_tune_tasks.offline.family import register_family
from flan_tune_tasks.offline.world import Fact, fact_sentence, get_world

YES, NO, UNKNOWN = "yes", "no", "it is not possible to tell"
NLI_LABELS = (YES, NO, UNKNOWN)
YES_NO = ("yes", "no")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _capitalize(text: str) -> str:
  return text[:1].upper() + text[1:]


def _the(noun_phrase: str) -> str:
  """'a tall clock tower' -> 'the tall clock tower', for landmarks named in passing."""
  return "the " + noun_phrase.split(" ", 1)[1]


def _other(rng: random.Random, pool: Sequence, *exclude):
  return rng.choice([x for x in pool if x not in exclude])


@functools.cache
def _people_with_job(job: str) -> tuple:
  return tuple(p for p in get_world().people if p.job == job)


@functools.cache
def _domain(relation: str) -> tuple:
  """Every value a non-numeric relation can take, in a fixed order."""
  w = get_world()
  return {
      "town": tuple(t.name for t in w.towns), "friend": tuple(p.name for p in w.people),
      "job": world.JOBS, "pet": world.PETS, "color": world.COLORS, "food": world.FOODS,
      "instrument": world.INSTRUMENTS, "region": world.REGIONS, "river": world.RIVERS,
      "product": world.PRODUCTS, "landmark": world.LANDMARKS,
  }[relation]


_NUMERIC_SPREAD = {"age": (1, 25), "founded": (1, 300), "population": (5000, 30000)}


def _other_value(rng: random.Random, relation: str, value: str, subject: str = "") -> str:
  """A wrong value of the same kind: a near miss for paraphrase and NLI hypotheses."""
  if relation not in _NUMERIC_SPREAD:
    return _other(rng, _domain(relation), value, subject)
  low, high = _NUMERIC_SPREAD[relation]
  delta = rng.randint(low, high)
  if relation == "population":
    delta -= delta % 10
  number = int(value)
  floor = 18 if relation == "age" else 100
  return str(number - delta if rng.random() < 0.5 and number - delta >= floor else
             number + delta)


def _person_values(person: world.Person) -> Dict[str, str]:
  return {r: str(getattr(person, r)) for r in world.PERSON_RELATIONS}


def _town_values(town: world.Town) -> Dict[str, str]:
  return {r: str(getattr(town, r)) for r in world.TOWN_RELATIONS}


# ---------------------------------------------------------------------------------------
# NLI over world facts. Hypothesis phrasings are chosen so that every phrasing of the same
# fact in the premise (world.fact_sentence) entails the claim and contradicts the denial.

PERSON_CLAIMS = {
    "town": ("{s} lives in {v}.", "{s}'s home is in {v}."),
    "job": ("{s} is a {v}.", "{s} works as a {v}."),
    "age": ("{s} is {v} years old.", "{s} is {v}."),
    "pet": ("{s} has a pet {v}.", "{s} owns a {v}."),
    "color": ("{s}'s favourite colour is {v}.", "{s} likes {v} more than any other colour."),
    "food": ("{s} enjoys eating {v}.", "{s} likes to eat {v}."),
    "instrument": ("{s} knows how to play the {v}.", "{s} plays the {v}."),
    "friend": ("{s} is best friends with {v}.", "{s}'s best friend is {v}."),
}
PERSON_DENIALS = {
    "town": ("{s} does not live in {v}.", "{s} lives somewhere other than {v}."),
    "job": ("{s} is not a {v}.", "{s} does not work as a {v}."),
    "age": ("{s} is not {v} years old.",),
    "pet": ("{s} does not own a {v}.", "{s} has no pet {v}."),
    "color": ("{s}'s favourite colour is not {v}.",),
    "food": ("{s} never eats {v}.", "{s} refuses to eat {v}."),
    "instrument": ("{s} cannot play the {v}.",),
    "friend": ("{s}'s best friend is not {v}.",),
}
# kind -> (relation, phrasings); the threshold {v} is compared with the stated number.
PERSON_COMPARISONS = {
    "older": ("age", ("{s} is older than {v}.", "{s} is over {v} years old.")),
    "younger": ("age", ("{s} is younger than {v}.", "{s} is under {v} years old.")),
}
# Relations with a single value, so stating one value rules out every other.
PERSON_FUNCTIONAL = {
    "town": "A person lives in only one town", "job": "Each person here has one job",
    "age": "A person has only one age", "color": "Only one colour can be the favourite",
    "friend": "A person has only one best friend",
}
PERSON_TOPICS = {
    "town": "where {s} lives", "job": "what {s} does for a living", "age": "how old {s} is",
    "pet": "which pets {s} has", "color": "which colour {s} likes best",
    "food": "what {s} likes to eat", "instrument": "which instruments {s} plays",
    "friend": "who {s}'s best friend is",
}

TOWN_CLAIMS = {
    "region": ("{s} is {p}.", "{s} is located {p}."),
    "river": ("{s} is on the river {v}.", "The {v} passes by {s}."),
    "founded": ("{s} was founded in {v}.", "{s} was established in the year {v}."),
    "product": ("{s} is known for its {v}.", "{s} produces {v}."),
    "landmark": ("{s} has {v}.", "There is {v} in {s}."),
}
TOWN_DENIALS = {
    "region": ("{s} is not {p}.",),
    "river": ("{s} is not on the river {v}.", "The {v} does not pass by {s}."),
    "founded": ("{s} was not founded in {v}.",),
    "product": ("{s} is not known for its {v}.", "{s} makes no {v}."),
    "landmark": ("{s} does not have {v}.",),
}
TOWN_COMPARISONS = {
    "before": ("founded", ("{s} was founded before {v}.", "{s} already stood in {v}.")),
    "after": ("founded", ("{s} was founded after {v}.", "{s} did not exist yet in {v}.")),
    "century": ("founded", ("{s} was founded in the {v}s.",)),
    "more": ("population", ("{s} has more than {v} inhabitants.",
                            "Over {v} people live in {s}.")),
    "fewer": ("population", ("{s} has fewer than {v} inhabitants.",
                             "Fewer than {v} people live in {s}.")),
}
TOWN_FUNCTIONAL = {"region": "A town lies in only one region",
                   "founded": "A town is founded only once"}
TOWN_TOPICS = {
    "region": "which part of the country {s} is in", "river": "which river {s} is on",
    "founded": "when {s} was founded", "population": "how many people live in {s}",
    "product": "what {s} is known for", "landmark": "which sights {s} has",
}

_GREATER = ("older", "after", "more")  # kinds that hold when the fact's number exceeds v


def _state(pattern: str, subject: str, value) -> str:
  """A claim about `subject`; {p} says where a region value lies ("on the coast")."""
  return pattern.format(s=subject, v=value, p=world.REGION_PLACE.get(str(value), ""))


def _threshold(rng: random.Random, kind: str, actual: int, truth: bool) -> int:
  """A number that makes the comparison `kind` true or false for `actual`."""
  if kind == "century":
    century = actual // 100 if truth else _other(rng, range(10, 20), actual // 100)
    return century * 100
  above = (kind in _GREATER) != truth
  if kind in ("more", "fewer"):  # far from the count, as some phrasings say "about"
    factor = rng.uniform(1.25, 2.0) if above else rng.uniform(0.4, 0.8)
    return max(100, round(actual * factor / 100) * 100)
  step = rng.randint(1, min(25, actual - 5)) if kind in ("older", "younger") else (
      rng.randint(1, 300))
  return actual + step if above else actual - step


def _comparison_reason(kind: str, actual: int, threshold: int) -> str:
  if kind == "century":
    falls = "falls" if actual // 100 == threshold // 100 else "does not fall"
    return f"The year {actual} {falls} in the {threshold}s"
  if kind in ("before", "after"):
    return f"{actual} is {'before' if actual < threshold else 'after'} {threshold}"
  return f"{actual} is {'less' if actual < threshold else 'more'} than {threshold}"


class NliPhrases(NamedTuple):
  """How hypotheses about one kind of subject (people or towns) are phrased and explained."""
  claims: Dict[str, tuple]
  denials: Dict[str, tuple]
  comparisons: Dict[str, tuple]
  functional: Dict[str, str]
  topics: Dict[str, str]


PERSON_NLI = NliPhrases(PERSON_CLAIMS, PERSON_DENIALS, PERSON_COMPARISONS, PERSON_FUNCTIONAL,
                        PERSON_TOPICS)
TOWN_NLI = NliPhrases(TOWN_CLAIMS, TOWN_DENIALS, TOWN_COMPARISONS, TOWN_FUNCTIONAL,
                      TOWN_TOPICS)


def _nli_example(rng: random.Random, subject: str, values: Dict[str, str],
                 phrases: NliPhrases) -> dict:
  """Premise: 2-3 facts about `subject`; hypothesis: one claim the premise decides or not.

  "It is not possible to tell" means the premise leaves the relation out, even where the
  world knows the value (half of those hypotheses state the true value).
  """
  claims, denials, comparisons, functional, topics = phrases
  label = rng.choice(NLI_LABELS)
  relations = list(values)
  if label == UNKNOWN:
    target = rng.choice(relations)
    forms = [(kind, target, None) for kind, table in (("claim", claims), ("deny", denials))
             if target in table]
    forms += [("compare", rel, kind) for kind, (rel, _) in comparisons.items() if rel == target]
    form = rng.choice(forms)
  else:
    if label == YES:
      forms = [("claim", r, None) for r in claims] + [
          ("deny_other", r, None) for r in functional if r in denials]
    else:
      forms = [("claim_other", r, None) for r in functional if r in claims] + [
          ("deny", r, None) for r in denials]
    forms += [("compare", rel, kind) for kind, (rel, _) in comparisons.items()]
    form = rng.choice(forms)
    target = form[1]
  others = [r for r in relations if r != target]
  stated = rng.sample(others, rng.randint(2, 3) if label == UNKNOWN else rng.randint(1, 2))
  if label != UNKNOWN:
    stated.append(target)
  rng.shuffle(stated)
  sentences = {r: fact_sentence(Fact(subject, r, values[r]), rng.randrange(3)) for r in stated}
  premise = " ".join(sentences[r] for r in stated)

  kind, relation = form[0], form[1]
  actual = values[relation]
  if kind == "compare":
    truth = label == YES if label != UNKNOWN else rng.random() < 0.5
    threshold = _threshold(rng, form[2], int(actual), truth)
    hypothesis = _state(rng.choice(comparisons[form[2]][1]), subject, threshold)
    reason = _comparison_reason(form[2], int(actual), threshold)
    verdict = "true" if truth else "false"
  else:
    keep = kind in ("claim", "deny") and (label != UNKNOWN or rng.random() < 0.5)
    value = actual if keep else _other_value(rng, relation, actual, subject)
    table = claims if kind.startswith("claim") else denials
    hypotheses = [_state(p, subject, value) for p in table[relation]]
    hypothesis = rng.choice([h for h in hypotheses if h not in premise] or hypotheses)
    reason, verdict = {
        "claim": ("The hypothesis says the same thing in other words", "true"),
        "deny": ("The hypothesis denies exactly that", "false"),
        "deny_other": (functional.get(relation), "true"),
        "claim_other": (functional.get(relation), "false"),
    }[kind]
  if label == UNKNOWN:
    rationale = (f"The premise does not say {topics[relation].format(s=subject)}, "
                 "so we cannot tell whether the hypothesis is true.")
  else:
    rationale = (f"The premise says \"{sentences[relation]}\" {reason}, "
                 f"so the hypothesis is {verdict}.")
  return {"premise": premise, "hypothesis": hypothesis, "label": label,
          "rationale": rationale}


def _resident_nli(rng: random.Random) -> dict:
  person = rng.choice(get_world().people)
  return _nli_example(rng, person.name, _person_values(person), PERSON_NLI)


def _town_nli(rng: random.Random) -> dict:
  town = rng.choice(get_world().towns)
  return _nli_example(rng, town.name, _town_values(town), TOWN_NLI)


NLI_TEMPLATES = [
    Template("Premise: {premise}\nHypothesis: {hypothesis}\n"
             "Does the premise entail the hypothesis?\n{options_}", "{label}"),
    Template("{premise}\n\nBased on the text above, is it true that \"{hypothesis}\"?\n"
             "{options_}", "{label}"),
    Template("Read the passage and decide whether the statement follows from it.\n"
             "Passage: {premise}\nStatement: {hypothesis}\n{options_}", "{label}"),
    Template("Given that \"{premise}\", can we conclude that \"{hypothesis}\"? {options_}",
             "{label}"),
    Template("{options_}\nSuppose this is true: {premise}\n"
             "Must the following be true as well? {hypothesis}", "{label}"),
    Template("{premise} Question: {hypothesis} Yes, no, or it is not possible to tell?",
             "{label}"),
    Template("Here is a short text: {premise}\nAnd a claim: {hypothesis}\nDoes the text "
             "support the claim (yes), rule it out (no), or leave it open?\n{options_}",
             "{label}"),
    Template("Hypothesis: {hypothesis}\nPremise: {premise}\n"
             "Is the hypothesis true according to the premise? {options_}", "{label}"),
    Template("Write a statement that gets the answer \"{label}\" when it is checked against "
             "this text.\nText: {premise}", "{hypothesis}", inverted=True),
    Template("Write a short text that answers \"{label}\" to whether it supports this "
             "statement: {hypothesis}", "{premise}", inverted=True),
]

register_family("nli_residents", "nli", _resident_nli, NLI_TEMPLATES,
                options=list(NLI_LABELS), rationale_field="rationale")
register_family("nli_towns", "nli", _town_nli, NLI_TEMPLATES,
                options=list(NLI_LABELS), rationale_field="rationale")


# ---------------------------------------------------------------------------------------
# Numeric entailment. Each quantity phrase stands for a set of whole numbers, an interval;
# the hypothesis follows when the premise's interval lies inside its own, is ruled out when
# they do not overlap, and is open otherwise. A bare count is exact.

QUANTITY_VERBS = {
    "bought": ("pears", "apples", "eggs", "plums"), "baked": ("loaves", "pies", "cakes"),
    "sold": ("clocks", "lanterns", "baskets"), "caught": ("fish", "crabs"),
    "picked": ("figs", "apples", "plums"), "mended": ("nets", "boots", "chairs"),
    "planted": ("trees", "roses"), "painted": ("pots", "signs", "doors"),
    "read": ("books", "letters"), "carved": ("spoons", "bowls", "toys"),
}
QUANTIFIERS = {
    "exact": ("{n}", "exactly {n}"), "more": ("more than {n}", "over {n}"),
    "fewer": ("fewer than {n}", "under {n}"), "at_least": ("at least {n}", "no fewer than {n}"),
    "at_most": ("at most {n}", "no more than {n}"),
}
QUANTITY_WORDS = {"exact": "exactly {n}", "more": "more than {n}", "fewer": "less than {n}",
                  "at_least": "at least {n}", "at_most": "at most {n}"}
QUANTITY_SENTENCE = "{name} {verb} {quantity} {item}{tail}."
SUM_PREMISE = "{name} {verb} {a} {item} in the morning and {b} more in the afternoon."
SUM_TAIL = " in all"


def quantity_interval(kind: str, n: int) -> Tuple[int, float]:
  """The whole numbers a quantity phrase allows, as an inclusive (low, high) pair."""
  return {"exact": (n, n), "more": (n + 1, float("inf")), "fewer": (0, n - 1),
          "at_least": (n, float("inf")), "at_most": (0, n)}[kind]


def _quantity_attempt(rng: random.Random) -> dict:
  name = rng.choice(world.FIRST_NAMES)
  verb = rng.choice(tuple(QUANTITY_VERBS))
  item = rng.choice(QUANTITY_VERBS[verb])
  if rng.random() < 0.2:
    a, b = rng.randint(2, 15), rng.randint(2, 15)
    kind, n, tail = "exact", a + b, SUM_TAIL
    premise = SUM_PREMISE.format(name=name, verb=verb, a=a, b=b, item=item)
    prefix = f"{a} + {b} = {n}, so {name} {verb} {n} {item} in all. "
  else:
    kind, n, tail, prefix = rng.choice(tuple(QUANTIFIERS)), rng.randint(2, 30), "", ""
    premise = QUANTITY_SENTENCE.format(name=name, verb=verb, item=item, tail=tail,
                                       quantity=rng.choice(QUANTIFIERS[kind]).format(n=n))
  h_kind, k = rng.choice(tuple(QUANTIFIERS)), max(2, n + rng.randint(-6, 6))
  h_name, h_item, switch = name, item, rng.random()
  if switch < 0.12:
    h_name = _other(rng, world.FIRST_NAMES, name)
  elif switch < 0.2 and len(QUANTITY_VERBS[verb]) > 1:
    h_item = _other(rng, QUANTITY_VERBS[verb], item)
  phrase = rng.choice(QUANTIFIERS[h_kind][1:] if h_kind == "exact" else QUANTIFIERS[h_kind])
  hypothesis = QUANTITY_SENTENCE.format(name=h_name, verb=verb, item=h_item, tail=tail,
                                        quantity=phrase.format(n=k))
  stated, asked = QUANTITY_WORDS[kind].format(n=n), QUANTITY_WORDS[h_kind].format(n=k)
  low, high = quantity_interval(kind, n)
  h_low, h_high = quantity_interval(h_kind, k)
  if h_name != name:
    label, reason = UNKNOWN, f"The premise is about {name}, not {h_name}, so we cannot tell."
  elif h_item != item:
    label, reason = UNKNOWN, f"The premise counts {item}, not {h_item}, so we cannot tell."
  elif h_low <= low and high <= h_high:
    label = YES
    reason = (f"{n} is {asked}" if kind == "exact" else
              f"Any number that is {stated} is also {asked}") + ", so the hypothesis is true."
  elif high < h_low or h_high < low:
    label = NO
    reason = (f"{n} is not {asked}" if kind == "exact" else
              f"No number that is {stated} is {asked}") + ", so the hypothesis is false."
  else:
    label = UNKNOWN
    span = range(low, int(min(high, max(n, k) + 5)) + 1)
    inside = next(x for x in span if h_low <= x <= h_high)
    outside = next(x for x in span if not h_low <= x <= h_high)
    reason = (f"A number that is {stated} could be {inside}, which is {asked}, or {outside}, "
              "which is not, so we cannot tell.")
  return {"premise": premise, "hypothesis": hypothesis, "label": label,
          "rationale": prefix + reason}


def _quantity_nli(rng: random.Random) -> dict:
  label = rng.choice(NLI_LABELS)
  while True:  # every label comes up within a few attempts
    example = _quantity_attempt(rng)
    if example["label"] == label:
      return example


QUANTITY_TEMPLATES = [
    Template("Fact: {premise}\nClaim: {hypothesis}\nDoes the fact make the claim true?\n"
             "{options_}", "{label}"),
    Template("{premise}\nDoes it follow that \"{hypothesis}\"? {options_}", "{label}"),
    Template("Count carefully. {premise}\nIs the statement \"{hypothesis}\" true? {options_}",
             "{label}"),
    Template("{options_}\nFirst sentence: {premise}\nSecond sentence: {hypothesis}\n"
             "If the first sentence is true, is the second one true too?", "{label}"),
    Template("Here is what we know: {premise}\nCan we be sure of this: \"{hypothesis}\"?\n"
             "{options_}", "{label}"),
    Template("Premise: {premise}\nHypothesis: {hypothesis}\nDo the numbers in the premise "
             "support the hypothesis? Yes, no, or it is not possible to tell?", "{label}"),
    Template("Decide whether the second statement follows from the first (yes), contradicts "
             "it (no), or neither.\n1) {premise}\n2) {hypothesis}\n{options_}", "{label}"),
    Template("{premise}\nTrue or not: {hypothesis} {options_}", "{label}"),
    Template("Known: {premise}\nWrite a statement about the count for which the answer is "
             "\"{label}\".", "{hypothesis}", inverted=True),
    Template("Write a sentence giving a count, so that the statement \"{hypothesis}\" gets "
             "the answer \"{label}\".", "{premise}", inverted=True),
]

register_family("nli_quantities", "nli", _quantity_nli, QUANTITY_TEMPLATES,
                options=list(NLI_LABELS), rationale_field="rationale")


# ---------------------------------------------------------------------------------------
# Sentiment.

PRODUCT_ITEMS = {
    "cheese": "wheel of cheese", "glass": "glass vase", "wool": "skein of wool",
    "clocks": "clock", "rope": "coil of rope", "honey": "jar of honey", "pottery": "clay jug",
    "paper": "ream of paper", "lanterns": "lantern", "boots": "pair of boots",
    "cider": "bottle of cider", "salt": "sack of salt", "bells": "bell", "baskets": "basket",
    "maps": "map", "soap": "bar of soap",
}
# product -> (what a pleased buyer says, what a disappointed one says)
PRODUCT_QUALITIES = {
    "cheese": ("The cheese was creamy and full of flavour.",
               "The cheese was dry, sour and already going mouldy."),
    "glass": ("The glass is clear and surprisingly strong.",
              "The glass was cloudy and cracked on the way home."),
    "wool": ("The wool is soft, warm and knits up beautifully.",
             "The wool is scratchy and pulls apart as you knit."),
    "clocks": ("It keeps perfect time and chimes sweetly.",
               "It loses an hour a day and the chime rattles."),
    "rope": ("The rope is strong and does not fray.",
             "The rope frayed the first time I used it."),
    "honey": ("The honey is thick, golden and sweet.",
              "The honey was runny and tasted of smoke."),
    "pottery": ("The jug is well balanced and pours without a drip.",
                "The jug leaks from a crack near the handle."),
    "paper": ("The paper is smooth and takes ink well.",
              "The ink bleeds straight through the paper."),
    "lanterns": ("It burns bright and steady all night.",
                 "It flickers and goes out at the slightest breeze."),
    "boots": ("They are comfortable and keep my feet dry.",
              "They pinch my toes and let in water."),
    "cider": ("The cider is crisp, sweet and refreshing.",
              "The cider was flat and tasted like vinegar."),
    "salt": ("The salt is clean and fine.", "The salt was damp and full of grit."),
    "bells": ("It rings with a clear, lovely tone.", "It clanks dully instead of ringing."),
    "baskets": ("It is tightly woven and sturdy.", "The weave came loose within a week."),
    "maps": ("The map is accurate and beautifully drawn.",
             "The map had half the roads in the wrong place."),
    "soap": ("The soap smells of lavender and lasts for weeks.",
             "The soap dried my skin and crumbled to bits."),
}
REVIEW_OPENERS = (
    "I bought a {item} at the market in {town}.",
    "Last month I ordered a {item} from {town}, a town famous for its {product}.",
    "My cousin brought me a {item} from {town}.",
    "Everyone said I should try a {item} from {town}.",
)
# label -> small complaints (or praise) that a review of the other tone gets past
REVIEW_CONCESSIONS = {
    "positive": ("The queue at the stall was long.", "It cost more than I meant to spend.",
                 "The seller was rather grumpy."),
    "negative": ("The seller was friendly enough.", "The price was fair.",
                 "It came wrapped very nicely."),
}
REVIEW_VERDICTS = {
    "positive": ("Worth every coin.", "I would happily buy another.", "Highly recommended.",
                 "I could not be more pleased.", "It has become a favourite in our house."),
    "negative": ("A waste of money.", "I will not buy from there again.",
                 "Very disappointing.", "I regret buying it.", "Save your coins."),
}
REVIEW_LABELS = ("negative", "positive")


def _review(rng: random.Random) -> dict:
  label = rng.choice(REVIEW_LABELS)
  town = rng.choice(get_world().towns)
  item = PRODUCT_ITEMS[town.product]
  quality = PRODUCT_QUALITIES[town.product][label == "negative"]
  parts = [rng.choice(REVIEW_OPENERS).format(item=item, town=town.name, product=town.product)]
  if rng.random() < 0.4:
    parts += [rng.choice(REVIEW_CONCESSIONS[label]), "But " + quality[0].lower() + quality[1:]]
  else:
    parts.append(quality)
  parts.append(rng.choice(REVIEW_VERDICTS[label]))
  return {"text": " ".join(parts), "label": label, "item": item, "town": town.name}


REVIEW_TEMPLATES = [
    Template("{text}\nIs this review positive or negative?\n{options_}", "{label}"),
    Template("Review of a {item} from {town}:\n{text}\n\nDid the buyer come away pleased "
             "(positive) or not (negative)? {options_}", "{label}"),
    Template("What is the tone of the following customer review?\n\n{text}\n\n{options_}",
             "{label}"),
    Template("{text}\n\nHow would you describe the feeling of this review? {options_}",
             "{label}"),
    Template("A customer wrote: \"{text}\" Would you call that review positive or negative?",
             "{label}"),
    Template("Label the sentiment of this market review.\nReview: {text}\n{options_}\n"
             "Sentiment:", "{label}"),
    Template("{options_}\nWhich word sums up this opinion of a {item}?\n{text}", "{label}"),
    Template("Read the review and say whether it is positive or negative.\n\n{text}",
             "{label}"),
    Template("Write a {label} review of a {item} bought from {town}.", "{text}",
             inverted=True),
    Template("Write a short review of a {item} from {town} that a reader would call {label}.",
             "{text}", inverted=True),
]

register_family("sentiment_reviews", "sentiment", _review, REVIEW_TEMPLATES,
                options=list(REVIEW_LABELS))


LETTER_LABELS = ("happy", "sad", "angry", "grateful")
# Lines of a note in the sender's voice; the slots are the sender's own facts.
LETTER_LINES = {
    "happy": (
        "My {pet} won first prize at the {town} fair, and I have not stopped smiling since.",
        "I played the {instrument} at the spring dance and the whole hall sang along. "
        "What a night!",
        "My work as a {job} has won a prize from the {town} council. I am over the moon!",
        "The sun has shone on {town} all week and I feel as light as a feather.",
        "We had {food} at the harvest supper and laughed until midnight. Life is good!",
    ),
    "sad": (
        "My {pet} has been ill for weeks, and I fear it will not get better.",
        "My {instrument} cracked in the cold and I cannot bear to look at it.",
        "There has been hardly any work for a {job} lately, and I lie awake worrying.",
        "The winter in {town} has been long and grey, and I feel very alone.",
        "Nothing cheers me up these days, not even {food}.",
    ),
    "angry": (
        "You borrowed my {instrument} a month ago and still have not returned it. "
        "I am furious!",
        "Someone left the gate open and my {pet} ran off again. I know it was your brother, "
        "and I am livid.",
        "The council of {town} has doubled the market fees without asking anyone. "
        "It makes my blood boil.",
        "You told half of {town} what I said to you in secret. How dare you!",
        "I waited two hours for you by {the_landmark} and you never came. "
        "Do not bother saying sorry.",
    ),
    "grateful": (
        "Thank you for looking after my {pet} while I was away.",
        "I cannot thank you enough for the {food} you brought when I was ill.",
        "Your help with my work as a {job} last week saved me days. I owe you so much.",
        "Thank you for mending my {instrument}; it sounds better than ever.",
        "I am so thankful that you came to {the_landmark} to help me when I was lost.",
    ),
}
LETTER_GREETINGS = ("Dear {first},", "Hello {first},", "{first},", "Dear {name},")
LETTER_CLOSINGS = ("Yours, {first}", "From {first}", "{first}", "Write soon, {first}")


def letter_slots(person: world.Person) -> Dict[str, str]:
  """The sender's facts a letter line may mention."""
  town = get_world().town_by_name[person.town]
  return {"pet": person.pet, "instrument": person.instrument, "job": person.job,
          "town": person.town, "food": person.food, "the_landmark": _the(town.landmark)}


def _letter(rng: random.Random) -> dict:
  label = rng.choice(LETTER_LABELS)
  w = get_world()
  sender = rng.choice(w.people)
  recipient = w.person_by_name[sender.friend]
  slots = letter_slots(sender)
  lines = [line.format(**slots) for line in rng.sample(LETTER_LINES[label], 2)]
  greeting = rng.choice(LETTER_GREETINGS).format(first=recipient.first_name,
                                                 name=recipient.name)
  closing = rng.choice(LETTER_CLOSINGS).format(first=sender.first_name)
  return {"letter": "\n".join([greeting, " ".join(lines), closing]), "label": label,
          "sender": sender.name, "recipient": recipient.name}


LETTER_TEMPLATES = [
    Template("{letter}\n\nWhich mood does this note express? {options_}", "{label}"),
    Template("How is {sender} feeling in this letter to {recipient}?\n\n{letter}\n\n"
             "{options_}", "{label}"),
    Template("Read the letter and name the writer's main feeling.\n{letter}\n{options_}",
             "{label}"),
    Template("Letter:\n{letter}\n{options_}\nEmotion of the writer:", "{label}"),
    Template("{sender} wrote this to {recipient}:\n\"{letter}\"\n"
             "Is {sender} happy, sad, angry or grateful?", "{label}"),
    Template("What emotion comes through in the following note? {options_}\n\n{letter}",
             "{label}"),
    Template("Classify the feeling behind this message.\n\n{letter}\n\n{options_}\nFeeling:",
             "{label}"),
    Template("{letter}\nIn one word, the writer of this note feels", "{label}"),
    Template("Write a short {label} letter from {sender} to {recipient}.", "{letter}",
             inverted=True),
    Template("{sender} feels {label}. Write the note {sender} might send to {recipient}, "
             "a best friend.", "{letter}", inverted=True),
]

register_family("sentiment_letters", "sentiment", _letter, LETTER_TEMPLATES,
                options=list(LETTER_LABELS))


STAR_LABELS = ("1", "2", "3", "4", "5")
STAR_LINES = {
    "5": ("Absolutely perfect; I could not fault a thing.",
          "The best I have come across anywhere.", "Outstanding from start to finish.",
          "I cannot praise it highly enough.", "Everything about it was flawless."),
    "4": ("Very good, with one or two small flaws.",
          "I liked it a lot, though it was a little pricey.",
          "Well above average; I would go back.", "Good quality, if not quite perfect.",
          "Mostly excellent, with a minor niggle."),
    "3": ("It was fine, but nothing special.", "Some parts were good and some were not.",
          "Average in almost every way.", "Neither good nor bad, just ordinary.",
          "Acceptable, though I expected a bit more."),
    "2": ("Rather disappointing overall.", "A few good points, but mostly below par.",
          "Not good; several things went wrong.", "I expected much better than this.",
          "Poor, though not a complete loss."),
    "1": ("Dreadful; a complete waste of money.", "The worst I have ever come across.",
          "Avoid it at all costs.", "Nothing about it was right.",
          "Truly awful from start to finish."),
}
STAR_OPENERS = (
    "I bought a {item} in {town}.", "I stayed two nights at an inn in {town}.",
    "I ate {food} at a tavern in {town}.", "I had a {item} sent to me from {town}.",
)


def _stars(rng: random.Random) -> dict:
  stars = rng.choice(STAR_LABELS)
  town = rng.choice(get_world().towns)
  opener = rng.choice(STAR_OPENERS).format(item=PRODUCT_ITEMS[town.product], town=town.name,
                                           food=rng.choice(world.FOODS))
  text = " ".join([opener] + rng.sample(STAR_LINES[stars], 2))
  return {"text": text, "stars": stars, "town": town.name}


STAR_TEMPLATES = [
    Template("{text}\n\nHow many stars, from 1 to 5, would this reviewer give? {options_}",
             "{stars}"),
    Template("Rate this review on a scale of 1 (worst) to 5 (best).\n{text}\n{options_}",
             "{stars}"),
    Template("Review: {text}\n{options_}\nNumber of stars:", "{stars}"),
    Template("Guess the star rating of the following review. {options_}\n\n{text}",
             "{stars}"),
    Template("{text}\nOn a five-star scale, what score goes with this review?", "{stars}"),
    Template("This review mentions {town}.\n{text}\nWhat rating, 1 to 5 stars, does it give?"
             " {options_}", "{stars}"),
    Template("Score the review from 1 to 5 stars, where 1 means terrible and 5 means "
             "excellent.\n\n{text}\n\n{options_}", "{stars}"),
    Template("Which star rating fits this review best?\n{text}\n{options_}", "{stars}"),
    Template("Write a {stars}-star review that mentions {town}.", "{text}", inverted=True),
    Template("A reviewer gave {stars} out of 5 stars to something from {town}. "
             "What might the review have said?", "{text}", inverted=True),
]

register_family("sentiment_stars", "sentiment", _stars, STAR_TEMPLATES,
                options=list(STAR_LABELS))


# ---------------------------------------------------------------------------------------
# Topic classification.

# Slots name world facts about {town} (and {person} or {doctor}, who live there), so the
# tests can check every item against the world.
NEWS = {
    "trade": (
        "Merchants from {other_town} arrived in {town} this week to buy its famous {product}, "
        "and prices rose by {number} percent.",
        "The {product} makers of {town} agreed to sell {number} crates to traders from "
        "{other_town}.",
        "Stalls in {town} ran out of {product} by noon on {day} as buyers crowded the market.",
        "Traders {region_place} say the price of {product} from {town} has fallen for "
        "{number} weeks in a row.",
    ),
    "weather": (
        "Heavy rain on {day} pushed the {river} over its banks at {town}.",
        "A hard frost covered {town} on {day} night, and roads {region_place} stayed icy "
        "until noon.",
        "After {number} dry weeks, farmers around {town} are still waiting for rain.",
        "Strong winds tore the roofs off {number} sheds in {town} on {day}.",
    ),
    "festival": (
        "{town} will mark its founding in {founded} with {number} days of music, lanterns "
        "and dancing.",
        "Crowds filled {town} for the yearly fair, where {person} played the {instrument} "
        "until midnight.",
        "On {day}, the harvest feast in {town} drew visitors from all over the {region}.",
        "Costumes, songs and sweets: {town} held its midsummer parade on {day}.",
    ),
    "sport": (
        "The rowing crew of {town} beat {other_town} by {number} lengths on the {river}.",
        "{person}, a {job} from {town}, won the long race at the games of the {region}.",
        "The football side of {town} lost to {other_town} by {number} goals on {day}.",
        "A wrestling match in {town} ended in a draw after {number} rounds.",
    ),
    "health": (
        "Doctor {doctor} of {town} urged families to boil their water after {number} people "
        "fell ill.",
        "A cough is spreading among the children of {town}, and the clinic will stay open "
        "late until {day}.",
        "Fewer people caught the winter fever in {town} this year; only {number} cases were "
        "reported.",
        "On {day}, Doctor {doctor} told the people of {town} to rest, drink water and keep "
        "warm as a fever goes round.",
        "Nurses in {town} gave {number} hundred children a spoonful of medicine against the "
        "spotted fever.",
    ),
    "building": (
        "Workers began repairing {the_landmark} in {town} on {day}.",
        "{town} will build a new bridge across the {river}, the council announced on {day}.",
        "A new school with {number} classrooms is going up in {town}, {region_place}.",
        "Scaffolding went up around {the_landmark} of {town} on {day} as builders started "
        "on a new roof.",
    ),
}
NEWS_TOPICS = tuple(NEWS)


def _news(rng: random.Random) -> dict:
  topic = rng.choice(NEWS_TOPICS)
  pattern = rng.choice(NEWS[topic])
  w = get_world()
  person = rng.choice(_people_with_job("doctor") if "{doctor}" in pattern else w.people)
  town = (w.town_by_name[person.town] if "{person}" in pattern or "{doctor}" in pattern
          else rng.choice(w.towns))
  news = pattern.format(
      town=town.name, product=town.product, river=town.river, region=town.region,
      region_place=world.REGION_PLACE[town.region],
      founded=town.founded, the_landmark=_the(town.landmark), person=person.name,
      doctor=person.name, job=person.job, instrument=person.instrument,
      other_town=_other(rng, [t.name for t in w.towns], town.name),
      number=rng.randint(2, 19), day=rng.choice(DAYS))
  return {"news": news, "topic": topic, "town": town.name}


NEWS_TEMPLATES = [
    Template("{news}\n\nWhat is this news item about? {options_}", "{topic}"),
    Template("Which section of the newspaper does this story belong in?\n{news}\n{options_}",
             "{topic}"),
    Template("News from {town}: {news}\n{options_}\nTopic:", "{topic}"),
    Template("Give the topic of the following report. {options_}\n\n{news}", "{topic}"),
    Template("{news}\nIs this story about trade, weather, a festival, sport, health or "
             "building?", "{topic}"),
    Template("Sort this short report into a category.\n\nReport: {news}\n\n{options_}",
             "{topic}"),
    Template("Read this: \"{news}\" What is the main subject? {options_}", "{topic}"),
    Template("Topic label for the item below, in one word:\n{news}", "{topic}"),
    Template("Write a one-sentence news item about {topic} in {town}.", "{news}",
             inverted=True),
    Template("Topic: {topic}\nPlace: {town}\nWrite a short news report.", "{news}",
             inverted=True),
]

register_family("topic_news", "topic_classification", _news, NEWS_TEMPLATES,
                options=list(NEWS_TOPICS))


# answer type -> (question, answer key); `typed_answer` computes the answer of a key.
TYPED_QUESTIONS = {
    "person": (("Who is {person}'s best friend?", "friend"),
               ("Which {job} lives in {town}?", "job_in_town"),
               ("Who plays the {instrument} in {town}?", "instrument_in_town"),
               ("Who is the oldest person living in {town}?", "oldest_in_town"),
               ("Who is older, {person} or {other}?", "older_of_two")),
    "place": (("Where does {person} live?", "town"),
              ("In which town does {person} make a home?", "town"),
              ("In which part of the country is {town}?", "region"),
              ("Which river flows through {town}?", "river"),
              ("Where does {person} go to work every day?", "workplace"),
              ("Which town is known for its {product}?", "town_of_product"),
              ("Which is the bigger town, {town} or {other_town}?", "bigger_town")),
    "number": (("How old is {person}?", "age"),
               ("How many people live in {town}?", "population"),
               ("How many legs does {person}'s pet have?", "pet_legs"),
               ("How many of the people we know live in {town}?", "resident_count"),
               ("What is the age difference between {person} and {other}?", "age_gap")),
    "year": (("When was {town} founded?", "founded"),
             ("In what year was {town} founded?", "founded"),
             ("Since which year has {town} stood?", "founded"),
             ("In which year was {town} exactly {number} years old?", "anniversary"),
             ("In what year was the town where {person} lives founded?", "home_founded"),
             ("When was the home town of {person}'s best friend founded?",
              "friend_home_founded")),
    "thing": (("What pet does {person} keep?", "pet"),
              ("What is {town} known for making?", "product"),
              ("Which instrument does {person} play?", "instrument"),
              ("What tool does {person} use at work?", "tool"),
              ("What is {person}'s favourite food?", "food"),
              ("What stands in the centre of {town}?", "landmark"),
              ("What does the best friend of {person} keep as a pet?", "friend_pet"),
              ("Which colour does {person} like best?", "color")),
}
QUESTION_TYPES = tuple(TYPED_QUESTIONS)
_PERSON_KEYS = ("job_in_town", "instrument_in_town")  # the answer is the drawn person


def typed_answer(key: str, person: world.Person, other: world.Person, town: world.Town,
                 other_town: world.Town, number: int) -> str:
  """The answer to a question of TYPED_QUESTIONS, from the world."""
  w = get_world()
  friend = w.person_by_name[person.friend]
  return str({
      "friend": lambda: person.friend, "job_in_town": lambda: person.name,
      "instrument_in_town": lambda: person.name,
      "oldest_in_town": lambda: max(w.residents(town.name), key=lambda p: p.age).name,
      "older_of_two": lambda: max((person, other), key=lambda p: p.age).name,
      "town": lambda: person.town, "region": lambda: town.region,
      "river": lambda: town.river, "workplace": lambda: world.JOB_WORKPLACE[person.job],
      "town_of_product": lambda: town.name,
      "bigger_town": lambda: max((town, other_town), key=lambda t: t.population).name,
      "age": lambda: person.age, "population": lambda: town.population,
      "pet_legs": lambda: world.PET_LEGS[person.pet],
      "resident_count": lambda: len(w.residents(town.name)),
      "age_gap": lambda: abs(person.age - other.age),
      "founded": lambda: town.founded, "anniversary": lambda: town.founded + number,
      "home_founded": lambda: w.town_by_name[person.town].founded,
      "friend_home_founded": lambda: w.town_by_name[friend.town].founded,
      "pet": lambda: person.pet, "product": lambda: town.product,
      "instrument": lambda: person.instrument, "tool": lambda: world.JOB_TOOL[person.job],
      "food": lambda: person.food, "landmark": lambda: town.landmark,
      "friend_pet": lambda: friend.pet, "color": lambda: person.color,
  }[key]())


def _question_type(rng: random.Random) -> dict:
  label = rng.choice(QUESTION_TYPES)
  pattern, key = rng.choice(TYPED_QUESTIONS[label])
  w = get_world()
  person = rng.choice(w.people)
  other = rng.choice([p for p in w.people if p.age != person.age])  # "who is older" decidable
  town = w.town_by_name[person.town] if key in _PERSON_KEYS else rng.choice(w.towns)
  other_town = _other(rng, w.towns, town)
  number = rng.randint(10, 400)
  question = pattern.format(person=person.name, other=other.name, town=town.name,
                            other_town=other_town.name, job=person.job,
                            instrument=person.instrument, product=town.product, number=number)
  return {"question": question, "label": label,
          "answer": typed_answer(key, person, other, town, other_town, number)}


QUESTION_TYPE_TEMPLATES = [
    Template("What kind of answer does this question ask for?\n{question}\n{options_}",
             "{label}"),
    Template("{question}\n\nDo not answer it; say what type of thing the answer would be. "
             "{options_}", "{label}"),
    Template("Question: {question}\n{options_}\nExpected answer type:", "{label}"),
    Template("Classify the question by the type of its answer: {question} {options_}",
             "{label}"),
    Template("Is the answer to \"{question}\" a person, a place, a number, a year or a "
             "thing?", "{label}"),
    Template("Someone asked: {question}\nWhat sort of answer are they looking for? "
             "{options_}", "{label}"),
    Template("{options_}\nWhich of these describes the answer to the question below?\n"
             "{question}", "{label}"),
    Template("Answer type of the question \"{question}\":", "{label}"),
    Template("Write a question about the towns and people of our world whose answer is a "
             "{label}.", "{question}", inverted=True),
    Template("The answer is {answer}, which is a {label}. Write a question it answers.",
             "{question}", inverted=True),
]

register_family("topic_question_type", "topic_classification", _question_type,
                QUESTION_TYPE_TEMPLATES, options=list(QUESTION_TYPES))


# What each job does in a day, never naming the job itself.
JOB_ACTIVITIES = {
    "baker": ("kneads dough", "shapes loaves and rolls", "pulls trays of buns out of the heat",
              "sells warm bread over the counter"),
    "blacksmith": ("heats iron until it glows", "hammers horseshoes on the anvil",
                   "mends a broken gate hinge",
                   "plunges red-hot metal into a bucket of water"),
    "teacher": ("marks a pile of spelling tests", "explains fractions to a room of children",
                "reads a story aloud to the class", "watches over the yard at break time"),
    "fisher": ("rows out past the harbour wall", "mends torn nets on the quay",
               "sorts the catch into crates", "checks the crab pots"),
    "weaver": ("threads long yarns onto the frame",
               "sends the shuttle back and forth for hours",
               "chooses dyed yarn for a new blanket", "cuts a finished length of cloth"),
    "carpenter": ("measures planks twice before cutting", "planes a table top smooth",
                  "fits the legs onto a new chair", "sweeps up sawdust and wood shavings"),
    "doctor": ("listens to patients' chests", "writes out medicine for a fever",
               "sets a broken arm", "visits a sick child at home"),
    "farmer": ("milks the cows", "ploughs the lower field",
               "mends the fence around the sheep", "brings in the hay before the rain"),
    "potter": ("shapes wet clay into bowls", "trims the bottoms of drying pots",
               "fires a batch of jugs in the kiln", "glazes cups in blue and white"),
    "librarian": ("puts returned books back on the shelves",
                  "helps a child find a book about ships", "glues torn book spines",
                  "asks noisy readers to whisper"),
    "painter": ("mixes colours on a board", "sketches the hills outside town",
                "finishes a portrait of the mayor", "stretches a fresh canvas"),
    "miller": ("pours sacks of wheat into the hopper", "checks the turning stones",
               "bags fresh flour for the bakers", "greases the big wooden gears"),
    "tailor": ("measures a customer for a coat", "pins the hem of a dress",
               "sews buttons onto a waistcoat", "lets out a pair of trousers"),
    "sailor": ("climbs the rigging", "hauls on the ropes as the ship leaves port",
               "scrubs the deck", "keeps a lookout from the mast"),
    "gardener": ("prunes the roses", "weeds the vegetable beds",
                 "plants bulbs along the path", "rakes leaves off the lawn"),
    "clockmaker": ("opens up a stopped pocket watch", "fits a new spring",
                   "oils tiny brass gears", "sets every clock in the shop to the same time"),
}
WORKDAY_FRAMES = (
    "In the morning {person} {a1}. After lunch {first} {a2}, and before heading home "
    "{first} {a3}.",
    "A normal day for {person} of {town}: {first} {a1}, then {a2}.",
    "Every day, {person} {a1} and {a2}. {first} could not do the work without {tool}.",
    "{person} spends most days at the {workplace} in {town}, where {first} {a1} and {a2}.",
    "{person} lives in {town}. On a busy day {first} {a1}, {a2} and {a3}.",
)


def _workday(rng: random.Random) -> dict:
  job = rng.choice(world.JOBS)
  person = rng.choice(_people_with_job(job))
  a1, a2, a3 = rng.sample(JOB_ACTIVITIES[job], 3)
  description = rng.choice(WORKDAY_FRAMES).format(
      person=person.name, first=person.first_name, town=person.town, a1=a1, a2=a2, a3=a3,
      tool=world.JOB_TOOL[job], workplace=world.JOB_WORKPLACE[job])
  choices = [job] + rng.sample([j for j in world.JOBS if j != job], 3)
  rng.shuffle(choices)
  return {"description": description, "person": person.name, "job": job,
          "choices": choices}


WORKDAY_TEMPLATES = [
    Template("{description}\n\nWhat is {person}'s job? {options_}", "{job}"),
    Template("Read about this working day and guess the job.\n{description}\n{options_}",
             "{job}"),
    Template("{options_}\nWhich of these jobs matches the day described below?\n"
             "{description}", "{job}"),
    Template("Description: {description}\n{options_}\nJob:", "{job}"),
    Template("What does {person} do for a living, judging by this?\n\n{description}\n\n"
             "{options_}", "{job}"),
    Template("{description} From this, {person} most likely works as a", "{job}"),
    Template("Guess the trade: {description} {options_}", "{job}"),
    Template("Name the occupation of the person in this passage. {description}", "{job}"),
    Template("Describe an ordinary working day of {person}, who works as a {job}.",
             "{description}", inverted=True),
    Template("{person} is a {job}. What might a day at work look like?", "{description}",
             inverted=True),
]

register_family("topic_job_from_day", "topic_classification", _workday, WORKDAY_TEMPLATES,
                options_field="choices")


# ---------------------------------------------------------------------------------------
# Paraphrase.

@functools.cache
def _facts() -> tuple:
  return tuple(get_world().facts())


def _near_miss_subject(rng: random.Random, subject: str) -> str:
  """Another subject of the same kind, sharing the first name when one does."""
  w = get_world()
  if subject in w.town_by_name:
    return _other(rng, [t.name for t in w.towns], subject)
  first = subject.split(" ")[0]
  namesakes = [p.name for p in w.people if p.first_name == first and p.name != subject]
  return rng.choice(namesakes) if namesakes and rng.random() < 0.7 else (
      _other(rng, [p.name for p in w.people], subject))


def _fact_pair(rng: random.Random) -> dict:
  label = rng.choice(YES_NO)
  fact = rng.choice(_facts())
  first = rng.randrange(3)
  if label == "yes":
    other, second = fact, _other(rng, range(3), first)
  else:
    if fact.relation == "friend" or rng.random() < 0.7:  # swapping friends is not a miss
      other = Fact(fact.subject, fact.relation,
                   _other_value(rng, fact.relation, fact.value, fact.subject))
    else:
      other = Fact(_near_miss_subject(rng, fact.subject), fact.relation, fact.value)
    second = rng.randrange(3)
  return {"sentence1": fact_sentence(fact, first), "sentence2": fact_sentence(other, second),
          "label": label}


FACT_PAIR_TEMPLATES = [
    Template("Sentence 1: {sentence1}\nSentence 2: {sentence2}\n"
             "Do these two sentences say the same thing? {options_}", "{label}"),
    Template("{sentence1}\n{sentence2}\n\nAre the two sentences above paraphrases of each "
             "other? {options_}", "{label}"),
    Template("Does \"{sentence1}\" mean the same as \"{sentence2}\"? {options_}", "{label}"),
    Template("Check whether the second sentence restates the first without changing any "
             "detail.\nFirst: {sentence1}\nSecond: {sentence2}\n{options_}", "{label}"),
    Template("I wrote \"{sentence1}\" and my friend wrote \"{sentence2}\". Did we state the "
             "same fact?", "{label}"),
    Template("{options_}\nIf one of these is true, must the other be true as well, and the "
             "other way round?\nA: {sentence1}\nB: {sentence2}", "{label}"),
    Template("Same meaning?\n{sentence1}\n{sentence2}", "{label}"),
    Template("Here are two statements about our world.\n1. {sentence1}\n2. {sentence2}\n"
             "Do they express the same fact? Answer yes or no.", "{label}"),
    Template("Sentence: {sentence1}\nWrite another sentence such that the answer to \"do "
             "they mean the same?\" is {label}.", "{sentence2}", inverted=True),
    Template("Two sentences were compared, and the answer to \"same meaning?\" was {label}. "
             "The second one was \"{sentence2}\". What could the first have been?",
             "{sentence1}", inverted=True),
]

register_family("paraphrase_facts", "paraphrase", _fact_pair, FACT_PAIR_TEMPLATES,
                options=list(YES_NO))


PERSON_QUESTION_FORMS = {
    "town": ("Where does {s} live?", "Which town is home to {s}?",
             "In what town does {s} make a home?"),
    "job": ("What does {s} do for a living?", "What is {s}'s job?",
            "What trade does {s} follow?"),
    "age": ("How old is {s}?", "What is {s}'s age?", "How many years has {s} lived?"),
    "pet": ("What pet does {s} keep?", "Which animal lives with {s} as a pet?",
            "What kind of pet does {s} have?"),
    "color": ("What is {s}'s favourite colour?", "Which colour does {s} like best?",
              "What colour does {s} prefer above all others?"),
    "food": ("What is {s}'s favourite food?", "What does {s} most like to eat?",
             "Which dish does {s} love best?"),
    "instrument": ("What instrument does {s} play?", "Which instrument can {s} play?",
                   "On what instrument does {s} make music?"),
    "friend": ("Who is {s}'s best friend?", "Who is the closest friend of {s}?",
               "Whom does {s} call a best friend?"),
}
TOWN_QUESTION_FORMS = {
    "region": ("In which part of the country is {s}?", "What region is {s} in?",
               "Where in the country does {s} lie?"),
    "river": ("Which river flows through {s}?", "What river does {s} stand on?",
              "On the banks of which river is {s}?"),
    "founded": ("When was {s} founded?", "In what year was {s} founded?",
                "Since which year has {s} stood?"),
    "population": ("How many people live in {s}?", "What is the population of {s}?",
                   "How many inhabitants does {s} have?"),
    "product": ("What is {s} known for?", "What do the people of {s} make?",
                "What goods do traders buy in {s}?"),
    "landmark": ("What landmark does {s} have?", "What sight do visitors to {s} admire?",
                 "What stands in the centre of {s}?"),
}


def _question_pair(rng: random.Random) -> dict:
  label = rng.choice(YES_NO)
  w = get_world()
  if rng.random() < 0.6:
    subject, forms = rng.choice(w.people).name, PERSON_QUESTION_FORMS
  else:
    subject, forms = rng.choice(w.towns).name, TOWN_QUESTION_FORMS
  relation = rng.choice(tuple(forms))
  first = rng.randrange(3)
  other_subject, other_relation = subject, relation
  if label == "yes":
    second = _other(rng, range(3), first)
  else:
    second = rng.randrange(3)
    if rng.random() < 0.6:
      other_relation = _other(rng, tuple(forms), relation)
    else:
      other_subject = _near_miss_subject(rng, subject)
  return {"question1": forms[relation][first].format(s=subject),
          "question2": forms[other_relation][second].format(s=other_subject),
          "label": label}


QUESTION_PAIR_TEMPLATES = [
    Template("Question 1: {question1}\nQuestion 2: {question2}\n"
             "Do these two questions ask for the same information? {options_}", "{label}"),
    Template("{question1}\n{question2}\nAre these two questions duplicates? {options_}",
             "{label}"),
    Template("Are \"{question1}\" and \"{question2}\" asking the same thing? {options_}",
             "{label}"),
    Template("A forum merges questions that ask the same thing. Should these two be merged?"
             "\nA: {question1}\nB: {question2}\n{options_}", "{label}"),
    Template("First question: {question1}\nSecond question: {question2}\n"
             "Same question in different words, yes or no?", "{label}"),
    Template("{options_}\nDo the following two questions mean the same?\n{question1}\n"
             "{question2}", "{label}"),
    Template("Tell me whether these questions are paraphrases: {question1} / {question2}",
             "{label}"),
    Template("Is the question \"{question2}\" a rewording of \"{question1}\"? {options_}",
             "{label}"),
    Template("Question: {question1}\nWrite a second question so that the answer to \"do "
             "they ask the same thing?\" is {label}.", "{question2}", inverted=True),
    Template("Give a question that, next to \"{question2}\", gets the answer {label} to "
             "\"same question?\".", "{question1}", inverted=True),
]

register_family("paraphrase_questions", "paraphrase", _question_pair,
                QUESTION_PAIR_TEMPLATES, options=list(YES_NO))


# ---------------------------------------------------------------------------------------
# Coreference.

# relation -> a sentence stating both people's values (both true in the world)
COREF_FACTS = {
    "job": "{a} works as a {va}, and {b} works as a {vb}.",
    "pet": "{a} keeps a {va}, while {b} keeps a {vb}.",
    "instrument": "{a} plays the {va}; {b} plays the {vb}.",
    "town": "{a} lives in {va}, and {b} lives in {vb}.",
    "age": "{a} is {va} years old and {b} is {vb}.",
}
# relation -> (how the story names a person by that value, what the rationale says)
COREF_MENTIONS = {
    "job": ("the {v}", "works as a {v}"), "pet": ("the {v} owner", "keeps a {v}"),
    "instrument": ("the {v} player", "plays the {v}"), "town": ("the one from {v}",
                                                                "lives in {v}"),
}
OLDER, YOUNGER = "the older one", "the younger one"
COREF_EVENTS = (
    "One evening {m} invited {o} to supper.",
    "At the market, {o} asked {m} for directions.",
    "When it began to rain, {m} lent {o} a coat.",
    "{o} waved across the square, but {m} did not notice.",
    "Later, {m} helped {o} carry a heavy sack home.",
    "The next day, {o} wrote a letter to {m}.",
    "{m} and {o} shared a table at the inn, and {m} paid for both.",
)


def _coref_pronoun(rng: random.Random) -> dict:
  w = get_world()
  relation = rng.choice(tuple(COREF_FACTS))
  first = rng.choice(w.people)
  second = rng.choice([p for p in w.people
                       if getattr(p, relation) != getattr(first, relation)])
  referent, other = (first, second) if rng.random() < 0.5 else (second, first)

  def mention(person):
    if relation == "age":
      older = max((first, second), key=lambda p: p.age)
      return OLDER if person is older else YOUNGER
    return COREF_MENTIONS[relation][0].format(v=getattr(person, relation))

  stated = COREF_FACTS[relation].format(a=first.name, va=getattr(first, relation),
                                        b=second.name, vb=getattr(second, relation))
  described = mention(referent)
  other_named = mention(other) if rng.random() < 0.4 else other.name
  event = _capitalize(rng.choice(COREF_EVENTS).format(m=described, o=other_named))
  if relation == "age":
    rationale = (f"{first.name} is {first.age} and {second.name} is {second.age}, "
                 f"so {described} is {referent.name}.")
  else:
    fact = COREF_MENTIONS[relation][1].format(v=getattr(referent, relation))
    rationale = (f"The story says that {referent.name} {fact}, so {described} is "
                 f"{referent.name}.")
  choices = [first.name, second.name]
  rng.shuffle(choices)
  return {"story": f"{stated} {event}", "mention": described, "choices": choices,
          "answer": referent.name, "rationale": rationale, "person1": first.name,
          "person2": second.name}


COREF_PRONOUN_TEMPLATES = [
    Template("{story}\n\nIn this story, who is \"{mention}\"? {options_}", "{answer}"),
    Template("Read the story and say whom \"{mention}\" refers to.\n{story}\n{options_}",
             "{answer}"),
    Template("{story}\nWho does the phrase \"{mention}\" point to? {options_}", "{answer}"),
    Template("Story: {story}\nQuestion: \"{mention}\" is which person?\n{options_}",
             "{answer}"),
    Template("{options_}\n{story}\nWhich of the people listed is meant by \"{mention}\"?",
             "{answer}"),
    Template("Resolve the reference. In \"{story}\", the words \"{mention}\" refer to whom?",
             "{answer}"),
    Template("{story} Here, \"{mention}\" means", "{answer}"),
    Template("Who is meant by \"{mention}\" in the following text? {options_}\n\n{story}",
             "{answer}"),
    Template("Write a short story about {person1} and {person2} in which \"{mention}\" "
             "refers to {answer}.", "{story}", inverted=True),
    Template("Story: {story}\nAsk a question about who a phrase in the story refers to, "
             "so that the answer is {answer}.", "Who is \"{mention}\" in the story?",
             inverted=True),
]

register_family("coref_pronoun", "coreference", _coref_pronoun, COREF_PRONOUN_TEMPLATES,
                options_field="choices", rationale_field="rationale")


# Winograd-style schemas: "it" is {a} or {b} depending on the adjective.
# (sentence, question, nouns for a, nouns for b, {adjective: "a" or "b"})
OBJECT_SCHEMAS = (
    ("The {a} could not jump over the {b} because it was too {adj}.", "What was too {adj}?",
     ("cat", "dog", "goat", "rabbit", "ferret", "hedgehog"),
     ("fence", "wall", "gate", "hedge", "woodpile"),
     {"tall": "b", "high": "b", "tired": "a", "small": "a", "old": "a"}),
    ("The {a} would not fit into the {b} because it was too {adj}.", "What was too {adj}?",
     ("clock", "lantern", "bell", "jug", "boot", "cheese"),
     ("basket", "box", "bag", "crate", "drawer", "sack"),
     {"big": "a", "large": "a", "wide": "a", "small": "b", "narrow": "b"}),
    ("The {a} smashed the {b} because it was so {adj}.", "What was so {adj}?",
     ("hammer", "stone", "brick", "log"), ("plate", "window", "vase", "mirror", "cup"),
     {"heavy": "a", "hard": "a", "fragile": "b", "thin": "b", "delicate": "b"}),
    ("{name} poured water from the {a} into the {b} until it was {adj}.", "What was {adj}?",
     ("jug", "kettle", "bucket", "bottle"), ("cup", "bowl", "mug", "basin"),
     {"empty": "a", "full": "b"}),
    ("The {a} hid behind the {b} because it was {adj}.", "What was {adj}?",
     ("cat", "rabbit", "hedgehog", "ferret", "goose"),
     ("barrel", "cart", "haystack", "door", "curtain"),
     {"frightened": "a", "scared": "a", "shy": "a", "wide": "b", "large": "b"}),
    ("The {a} could not hold the {b} because it was too {adj}.", "What was too {adj}?",
     ("rope", "shelf", "branch", "hook", "string"),
     ("bell", "anvil", "sack", "clock", "millstone"),
     {"weak": "a", "thin": "a", "flimsy": "a", "heavy": "b"}),
    ("The {a} ate the {b} because it was {adj}.", "What was {adj}?",
     ("goat", "dog", "goose", "rabbit", "parrot"),
     ("carrot", "apple", "pear", "plum", "pancake", "fig"),
     {"hungry": "a", "starving": "a", "sweet": "b", "ripe": "b", "fresh": "b"}),
    ("The {a} could not pull the {b} because it was too {adj}.", "What was too {adj}?",
     ("goat", "dog", "pony", "donkey"), ("cart", "sledge", "plough", "barrow"),
     {"weak": "a", "young": "a", "tired": "a", "heavy": "b"}),
    ("The {a} did not wake the {b} because it was too {adj}.", "What was too {adj}?",
     ("bell", "clock", "drum", "horn"), ("cat", "dog", "goose", "parrot"),
     {"quiet": "a", "soft": "a", "faint": "a", "sleepy": "b", "tired": "b"}),
    ("The {a} could not light the {b} because it was too {adj}.", "What was too {adj}?",
     ("lantern", "candle", "lamp"), ("hall", "barn", "cellar", "tower", "library"),
     {"dim": "a", "weak": "a", "small": "a", "big": "b", "large": "b", "dark": "b"}),
    ("The {a} sank into the {b} because it was too {adj}.", "What was too {adj}?",
     ("boot", "cart", "stone", "barrel"), ("mud", "snow", "sand", "marsh"),
     {"heavy": "a", "soft": "b", "deep": "b", "wet": "b"}),
    ("The {a} did not fit through the {b} because it was too {adj}.", "What was too {adj}?",
     ("goat", "cart", "barrel", "cupboard", "donkey"), ("gate", "door", "gap", "window"),
     {"wide": "a", "big": "a", "bulky": "a", "narrow": "b", "small": "b", "low": "b"}),
)


def _coref_objects(rng: random.Random) -> dict:
  sentence, question, a_nouns, b_nouns, adjectives = rng.choice(OBJECT_SCHEMAS)
  side = rng.choice(("a", "b"))
  adj = rng.choice([word for word, meant in adjectives.items() if meant == side])
  a, b = rng.choice(a_nouns), rng.choice(b_nouns)
  choices = [a, b]
  rng.shuffle(choices)
  return {"sentence": sentence.format(a=a, b=b, adj=adj, name=rng.choice(world.FIRST_NAMES)),
          "question": question.format(adj=adj), "choices": choices,
          "answer": a if side == "a" else b, "first": a, "second": b}


COREF_OBJECT_TEMPLATES = [
    Template("{sentence}\n{question} {options_}", "{answer}"),
    Template("{sentence}\n\nIn the sentence above, what does \"it\" refer to? {options_}",
             "{answer}"),
    Template("Sentence: {sentence}\nQuestion: {question}\n{options_}\nAnswer:", "{answer}"),
    Template("What is \"it\" in this sentence? {sentence} {options_}", "{answer}"),
    Template("{options_}\nPick the thing that \"it\" stands for: {sentence}", "{answer}"),
    Template("Read: \"{sentence}\" {question}", "{answer}"),
    Template("{sentence} Does \"it\" mean the {first} or the {second}?", "{answer}"),
    Template("Common sense puzzle. {sentence}\n{question}\n{options_}", "{answer}"),
    Template("Write a sentence about the {first} and the {second} in which \"it\" refers to "
             "the {answer}.", "{sentence}", inverted=True),
    Template("{question} Answer: the {answer}. Write a sentence about the {first} and the "
             "{second} that this question could be about.", "{sentence}", inverted=True),
]

register_family("coref_objects", "coreference", _coref_objects, COREF_OBJECT_TEMPLATES,
                options_field="choices")
