"""Text classification in FLAN 2021: sentiment (IMDB, Yelp, Sentiment140), paraphrase
(PAWS), question types (TREC) and news topics (AG News, which FLAN 2021 files under its
summarization cluster). Datasets without a validation split evaluate on their test
split. Sizes: TFDS catalog of each pinned version.
"""

from flan_tune.tasks import metrics
from flan_tune_tasks.flan_tfds import families
from flan_tune_tasks.flan_tfds.common import add, label_text, option_postprocessor, tf_label_not
from flan_tune_tasks.flan_tfds.families import T, inverted

SENTIMENT = ["negative", "positive"]
NO_YES = ["no", "yes"]
TEST_AS_VALIDATION = {"train": "train", "validation": "test"}


def _sentiment_task(name, tfds_name, sizes, kind, extra=(), example_fn=None, **kwargs):
  """Binary sentiment with a ClassLabel `label` over `text` unless example_fn says."""
  add(name, tfds_name, splits=TEST_AS_VALIDATION, sizes=sizes,
      collection="flan2021", cluster="sentiment", options=SENTIMENT,
      example_fn=example_fn or (lambda r: {"text": r["text"], "kind": kind,
                                           "label": label_text(SENTIMENT, r["label"])}),
      templates=families.sentiment() + list(extra), metric_fns=[metrics.accuracy],
      postprocess_fn=option_postprocessor(SENTIMENT), **kwargs)


_sentiment_task(
    "imdb_reviews", "imdb_reviews/plain_text:1.0.0",
    {"train": 25_000, "validation": 25_000}, "movie review",
    extra=[T("{text}\n\nDid the reviewer recommend this film? Answer with the review's "
             "sentiment.\n{options_}", "{label}")])

_sentiment_task(
    "yelp_polarity_reviews", "yelp_polarity_reviews:0.2.0",
    {"train": 560_000, "validation": 38_000}, "business review",
    extra=[T("Customer review: {text}\nWas the customer's experience good or bad "
             "overall? {options_}", "{label}")])

# Sentiment140 polarity: 0 negative, 2 neutral (test split only), 4 positive.
_sentiment_task(
    "sentiment140", "sentiment140:1.0.0",
    {"train": 1_600_000, "validation": 498}, "tweet",
    keep_fn=tf_label_not("polarity", 2),
    example_fn=lambda r: {"text": r["text"], "kind": "tweet",
                          "label": SENTIMENT[int(r["polarity"] > 2)]},
    extra=[T("Tweet: {text}\nIs the person tweeting in a good mood or a bad one? "
             "{options_}", "{label}")])

add("paws_wiki", "paws_wiki/labeled_final_raw:1.1.0",
    splits=("train", "validation", "test"),
    sizes={"train": 49_401, "validation": 8_000, "test": 8_000},
    collection="flan2021", cluster="paraphrase", options=NO_YES,
    example_fn=lambda r: {"sentence1": r["sentence1"], "sentence2": r["sentence2"],
                          "kind": "sentences", "label": label_text(NO_YES, r["label"])},
    templates=families.paraphrase() + [
        T("These sentences use almost the same words. Do they also mean the same?\n"
          "{sentence1}\n{sentence2}\n{options_}", "{label}"),
    ],
    metric_fns=[metrics.accuracy], postprocess_fn=option_postprocessor(NO_YES))

# TREC coarse classes in TFDS order: DESC, ENTY, ABBR, HUM, NUM, LOC.
TREC = ["description", "entity", "abbreviation", "person", "number", "location"]
add("trec", "trec:1.0.0", splits=TEST_AS_VALIDATION,
    sizes={"train": 5_452, "validation": 500},
    collection="flan2021", cluster="misc", options=TREC,
    example_fn=lambda r: {"text": r["text"], "label": label_text(TREC, r["label-coarse"])},
    templates=[
        T("What kind of thing is this question asking for?\n{text}\n{options_}", "{label}"),
        T("Question: {text}\nWhat type of answer does it expect? {options_}", "{label}"),
        T("{text}\n\nIs the answer to this question a description, an entity, an "
          "abbreviation, a person, a number or a location?\n{options_}", "{label}"),
        T("Classify the question by the category of its answer: {text}\n{options_}",
          "{label}"),
        T("Someone asks \"{text}\" What sort of answer are they looking for? {options_}",
          "{label}"),
        T("Label the question type.\n\n{text}\n\n{options_}", "{label}"),
        T("Which answer category fits this question best? {text}\n{options_}", "{label}"),
        T("Here is a question: {text}\nIts answer would be a... {options_}", "{label}"),
        inverted("Write a question whose answer would be a {label}.", "{text}"),
    ],
    metric_fns=[metrics.accuracy], postprocess_fn=option_postprocessor(TREC))

AG_NEWS = ["World", "Sports", "Business", "Science/Tech"]
add("ag_news_subset", "ag_news_subset:1.0.0", splits=TEST_AS_VALIDATION,
    sizes={"train": 120_000, "validation": 7_600},
    collection="flan2021", cluster="summarization", options=AG_NEWS,
    example_fn=lambda r: {"title": r["title"], "text": r["description"],
                          "label": label_text(AG_NEWS, r["label"])},
    templates=[
        T("{title}\n\n{text}\n\nWhich section of a newspaper does this article belong "
          "in?\n{options_}", "{label}"),
        T("What is this news story about?\n{text}\n{options_}", "{label}"),
        T("Headline: {title}\nStory: {text}\nTopic: {options_}", "{label}"),
        T("Choose the topic of the following article.\n\n{text}\n\n{options_}", "{label}"),
        T("\"{text}\"\nIs this a piece about world news, sports, business or science and "
          "technology? {options_}", "{label}"),
        T("Categorize this headline: {title}\n{options_}", "{label}"),
        T("Here is a news summary: {text}\nWhat subject area does it cover? {options_}",
          "{label}"),
        T("{title}: {text}\n\nAssign this story to a news category. {options_}",
          "{label}"),
        inverted("Write a short {label} news item.", "{text}"),
        inverted("Write a headline for a {label} story.", "{title}"),
    ],
    metric_fns=[metrics.accuracy], postprocess_fn=option_postprocessor(AG_NEWS))
