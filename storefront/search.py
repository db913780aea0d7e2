"""How well a product's title answers a search: the relevance half of the search order.

Pure functions over strings, so the rules can be read and tested on their own; the selector
(storefront.selectors.search_listing) asks the database for the candidates and breaks ties of
relevance by popularity.
"""

import re
from dataclasses import dataclass

MAX_TERMS = 8
_WORD = re.compile(r"[a-z0-9]+")
# Words that say nothing about a product on their own: a title holding only these does not
# match ("set of 3" still finds sets by "set" and "3").
STOP_WORDS = frozenset({"a", "an", "and", "for", "in", "of", "on", "the", "to", "w", "with"})


def words(text: str) -> list[str]:
    """Lower-case words of letters and digits: "T-Light Holder" -> ["t", "light", "holder"]."""
    return _WORD.findall(text.lower())


def stem(word: str) -> str:
    """A plural's singular, so "hearts" finds "Heart" and "boxes" finds "Box"."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def match_root(term: str) -> str:
    """How a word of the title must start to match the term in any of its forms ("candies" ->
    "cand", which also finds "Candy"): the common start of the term and its singular."""
    singular = stem(term)
    length = 0
    while length < min(len(term), len(singular)) and term[length] == singular[length]:
        length += 1
    return term[:length]


# What separates words in catalog titles ("T-Light", "S/3", "(Set Of 6)"): a term matches
# where it starts the title or follows one of these.
WORD_SEPARATORS = (" ", "-", "/", "(")


@dataclass(frozen=True)
class Query:
    text: str  # as typed, trimmed
    terms: tuple[str, ...]  # the words that select and rank products

    @property
    def roots(self) -> tuple[str, ...]:
        return tuple(match_root(term) for term in self.terms)


def parse_query(text: str) -> Query:
    """The query's words without stop words (all of them when that leaves none), at most
    MAX_TERMS, each once. A one-letter word counts only when it is a digit ("3")."""
    found = list(dict.fromkeys(words(text)))
    useful = [w for w in found if w not in STOP_WORDS and (len(w) > 1 or w.isdigit())]
    return Query(text=text.strip(), terms=tuple((useful or found)[:MAX_TERMS]))


Relevance = tuple[int, int, int, int]


def relevance(query: Query, title: str, sku: str) -> Relevance:
    """Higher is a better match, compared in this order:
    1. the query is this product's SKU (shoppers paste SKUs from receipts);
    2. how many of the query's terms start a word of the title, in any form ("lant" and
       "lanterns" both start "Lantern"; "heart" does not start "Sweetheart");
    3. how many of them are whole words of the title, singular and plural alike ("hearts" is
       the word "Heart"; "lant" is not the word "Lantern");
    4. the terms stand together in the title, in the query's order ("hot water bottle").
    """
    title_words = words(title)
    title_stems = [stem(w) for w in title_words]
    term_stems = [stem(t) for t in query.terms]
    matched = sum(any(w.startswith(root) for w in title_words) for root in query.roots)
    whole = sum(s in title_stems for s in term_stems)
    return (
        int(bool(query.text) and sku.lower() == query.text.lower()),
        matched,
        whole,
        int(len(term_stems) > 1 and _holds_phrase(title_stems, term_stems)),
    )


def starts_with_term(query: Query, title: str) -> bool:
    """The title's first word is the query's first term: a tie-breaker among equals."""
    title_words = words(title)
    return bool(query.terms and title_words) and stem(title_words[0]) == stem(query.terms[0])


def _holds_phrase(title_stems: list[str], term_stems: list[str]) -> bool:
    n = len(term_stems)
    return any(title_stems[i : i + n] == term_stems for i in range(len(title_stems) - n + 1))
