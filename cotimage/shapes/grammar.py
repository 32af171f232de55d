"""The prompt grammar: one lexicon that both writes prompts from specs and parses them back.

Every phrase the writer can emit is an entry of :data:`LEXICON`, and the parser reads a
prompt by longest match against the same entries, so ``parse(describe(spec)) == spec``
for every spec the writer can express (tests check this both ways).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from cotimage.shapes.spec import COLORS, SHAPES, ObjectSpec, Relation, SceneSpec, as_rng

COUNT_PHRASES = {1: ("a", "one", "a single"), 2: ("two", "a pair of"), 3: ("three",), 4: ("four",)}
SIZE_PHRASES = {"small": ("small", "little", "tiny"), "large": ("large", "big")}
PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles", "diamond": "diamonds", "cross": "crosses"}
RELATION_PHRASES = {
    "left of": ("to the left of", "left of", "on the left of"),
    "right of": ("to the right of", "right of", "on the right of"),
    "above": ("above", "over", "on top of"),
    "below": ("below", "under", "beneath"),
}
#: Words between a shape and its colour: "a circle that is red", "two squares in blue".
POSTCOLOR_PHRASES = ("that is", "that are", "which is", "which are", "colored", "in")
JOINERS = ("and", "as well as", "along with", "plus", "together with")
VERBS = ("is", "are", "sits", "sit", "placed", "located")
OPENERS = ("an image of", "a picture of", "a drawing of", "a scene with", "draw", "show", "there is", "there are")
CLOSERS = ("on a black background", "in the picture")
#: The GenEval-style opener; the compbench writer never uses it (tests check).
GENEVAL_OPENER = "a photo of"


def _build_lexicon() -> dict[tuple[str, ...], tuple[str, Any]]:
    lexicon: dict[tuple[str, ...], tuple[str, Any]] = {}

    def add(phrase: str, kind: str, value: Any) -> None:
        key = tuple(phrase.split())
        if key in lexicon and lexicon[key] != (kind, value):
            raise AssertionError(f"phrase {phrase!r} is ambiguous")
        lexicon[key] = (kind, value)

    for count, phrases in COUNT_PHRASES.items():
        for phrase in phrases:
            add(phrase, "count", count)
    add("an", "count", 1)
    for size, phrases in SIZE_PHRASES.items():
        for phrase in phrases:
            add(phrase, "size", size)
    for color in COLORS:
        add(color, "color", color)
    for shape in SHAPES:
        add(shape, "shape", shape)
        add(PLURALS[shape], "shape", shape)
    for relation, phrases in RELATION_PHRASES.items():
        for phrase in phrases:
            add(phrase, "relation", relation)
    for phrase in POSTCOLOR_PHRASES:
        add(phrase, "postcolor", None)
    for kind, phrases in (("joiner", JOINERS), ("verb", VERBS), ("opener", (*OPENERS, GENEVAL_OPENER)), ("closer", CLOSERS)):
        for phrase in phrases:
            add(phrase, kind, None)
    return lexicon


LEXICON = _build_lexicon()
_MAX_PHRASE = max(len(key) for key in LEXICON)
#: Every word a prompt may contain, plus the comma; the generators' text vocabulary.
VOCABULARY: tuple[str, ...] = tuple(sorted({w for key in LEXICON for w in key} | {","}))


def words(text: str) -> list[str]:
    """Lower-cased words and commas of a prompt, in order (the text tokenization)."""
    return re.findall(r"[a-z]+|,", text.lower())


def _phrases(text: str) -> list[tuple[str, Any, str]]:
    tokens = re.findall(r"[a-z]+|,|\.", text.lower())  # words() and the sentence stops, which separate objects too
    leftover = re.sub(r"[a-z]+|,|\s|\.", "", text.lower())
    if leftover:
        raise ValueError(f"prompt has characters outside the grammar: {leftover!r} in {text!r}")
    out, i = [], 0
    while i < len(tokens):
        if tokens[i] in (",", "."):
            out.append(("punctuation", None, tokens[i]))
            i += 1
            continue
        for n in range(min(_MAX_PHRASE, len(tokens) - i), 0, -1):
            key = tuple(tokens[i : i + n])
            if key in LEXICON:
                out.append((*LEXICON[key], " ".join(key)))
                i += n
                break
        else:
            raise ValueError(
                f"prompt has the unknown word {tokens[i]!r} in {text!r}; known words: {', '.join(VOCABULARY)}"
            )
    return out


def parse(text: str) -> SceneSpec:
    """Parse a prompt into a :class:`SceneSpec`.

    A relation phrase relates the noun phrase before it to the one after it. Noun phrases
    are separated by a comma, a full stop, a joiner ("and", "as well as", ...) or a relation;
    a count of one takes a singular noun and a larger count a plural; a verb ("is", "placed")
    only comes before a relation (or another verb: "is placed above"). Openers ("a photo of",
    "there is") and closers ("on a black background") may stand anywhere.

    Raises:
        ValueError: for an unknown word, a dangling attribute, joiner or relation, a verb not
            before a relation, nouns without a separator, a count that disagrees with its noun,
            or an invalid scene; the message quotes the prompt.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"prompt must be a non-empty string, got {text!r}")
    objects: list[ObjectSpec] = []
    relations: list[Relation] = []
    attrs: dict[str, Any] = {}
    pending_relation: tuple[int, str] | None = None
    expect_color = False
    separated = None  # the phrase that separates the last object from the next one, if any
    previous = None  # the previous phrase's kind
    for kind, value, phrase in _phrases(text):
        if previous == "verb" and kind not in ("verb", "relation"):
            raise ValueError(f"prompt {text!r}: a verb must come before a relation, not before {phrase!r}")
        if expect_color:
            if kind != "color":
                raise ValueError(f"prompt {text!r}: expected a color after 'that is/in', got {phrase!r}")
            last = objects[-1]
            if last.color is not None:
                raise ValueError(f"prompt {text!r}: the {last.shape} has two colors")
            objects[-1] = ObjectSpec(last.shape, value, last.size, last.count)
            expect_color = False
        elif kind in ("count", "size", "color"):
            if kind in attrs:
                raise ValueError(f"prompt {text!r}: two {kind}s before one shape ({phrase!r})")
            attrs[kind] = value
        elif kind == "shape":
            if objects and not separated and pending_relation is None:
                raise ValueError(f"prompt {text!r}: {phrase!r} must be joined to the object before it "
                                 "(a comma, 'and', ... or a relation)")
            count = attrs.get("count", 1)
            if (phrase == PLURALS[value]) != (count > 1):
                raise ValueError(f"prompt {text!r}: a count of {count} takes {'the plural' if count > 1 else 'one'} "
                                 f"{PLURALS[value] if count > 1 else value!r}, not {phrase!r}")
            objects.append(ObjectSpec(value, attrs.get("color"), attrs.get("size"), count))
            attrs, separated = {}, None
            if pending_relation is not None:
                subject, relation = pending_relation
                if objects[subject].count != 1 or count != 1:
                    raise ValueError(f"prompt {text!r}: a relation ({relation!r}) holds between single objects, "
                                     f"not groups of {objects[subject].count} and {count}")
                relations.append(Relation(subject, relation, len(objects) - 1))
                pending_relation = None
        elif kind == "relation":
            if not objects or attrs or pending_relation is not None or separated:
                raise ValueError(f"prompt {text!r}: relation {phrase!r} needs an object before it")
            pending_relation = (len(objects) - 1, value)
        elif kind == "postcolor":
            if not objects or attrs or separated or previous != "shape":
                raise ValueError(f"prompt {text!r}: {phrase!r} must follow a shape")
            expect_color = True
        elif kind == "joiner":
            if not objects or attrs or pending_relation is not None:
                raise ValueError(f"prompt {text!r}: {phrase!r} must come between two objects")
            separated = phrase
        elif kind == "punctuation":
            if objects and not attrs and pending_relation is None:
                separated = separated or phrase
        elif kind == "closer" and separated in (",", "."):
            separated = None  # "a circle and a square, on a black background": the comma closes nothing
        previous = kind
    if attrs or expect_color or pending_relation is not None or separated not in (None, ",", ".") or previous == "verb":
        raise ValueError(f"prompt {text!r} ends before its last object is complete")
    if not objects:
        raise ValueError(f"prompt {text!r} names no shape; known shapes: {list(SHAPES)}")
    return SceneSpec(tuple(objects), tuple(relations))


def as_spec(value: SceneSpec | str | dict | Any) -> SceneSpec:
    """Coerce a spec, a prompt, a spec dict or a suite record (with ``.spec``) to a spec."""
    if isinstance(value, SceneSpec):
        return value
    if isinstance(value, str):
        return parse(value)
    if isinstance(value, dict):
        return SceneSpec.from_dict(value.get("spec", value))
    spec = getattr(value, "spec", None)
    if isinstance(spec, SceneSpec):
        return spec
    raise ValueError(f"expected a SceneSpec, prompt, spec dict or suite record, got {type(value).__name__}")


def _article(phrase: str, next_word: str) -> str:
    return "an" if phrase == "a" and next_word[0] in "aeiou" else phrase


def noun_phrase(obj: ObjectSpec, rng: np.random.Generator, style: str = "compbench") -> str:
    """Write one object group, e.g. "two small red circles" or "a circle that is red"."""
    shape = obj.shape if obj.count == 1 else PLURALS[obj.shape]
    size = SIZE_PHRASES[obj.size][0 if style == "geneval" else rng.integers(2)] if obj.size else None
    postposed = style == "compbench" and obj.color is not None and rng.random() < 0.3
    body = [w for w in (size, None if postposed else obj.color, shape) if w]
    choices = COUNT_PHRASES[obj.count]
    count = choices[0] if style == "geneval" else choices[rng.integers(len(choices))]
    text = " ".join([_article(count, body[0]), *body])
    if postposed:
        marker = POSTCOLOR_PHRASES[rng.integers(len(POSTCOLOR_PHRASES))]
        if marker in ("that is", "which is") and obj.count > 1:
            marker = marker.replace("is", "are")
        elif marker in ("that are", "which are") and obj.count == 1:
            marker = marker.replace("are", "is")
        text += f" {marker} {obj.color}"
    return text


def describe(
    spec: SceneSpec | str | dict, rng: np.random.Generator | int | None = None, style: str = "compbench"
) -> str:
    """Write a prompt for ``spec``.

    Args:
        spec: The scene, or what :func:`as_spec` reads as one (a prompt, a spec dict or a suite
            record), as :func:`~cotimage.shapes.render` and :func:`~cotimage.shapes.check` take.
            Relations must link consecutive groups (``subject + 1 == object``), since a
            relation phrase relates its neighbours.
        rng: Seed or generator choosing among phrasings.
        style: ``"compbench"`` (varied natural phrasings) or ``"geneval"`` (the fixed
            "a photo of ..." templates).
    """
    if style not in ("compbench", "geneval"):
        raise ValueError(f"style={style!r} is not allowed; choose one of ['compbench', 'geneval']")
    spec = as_spec(spec)
    rng = as_rng(rng, "rng")
    links = {r.subject: r.relation for r in spec.relations}
    opener = rng.integers(len(OPENERS) + 2)  # two extra draws: no opener
    opener = OPENERS[opener] if style == "compbench" and opener < len(OPENERS) else ""
    verbs = ("",) if opener.startswith("there") else ("", "is", "sits", "placed", "located")
    if any(r.object != r.subject + 1 for r in spec.relations):
        raise ValueError("describe can only write relations between consecutive objects (subject + 1 == object)")
    parts = []
    for i, obj in enumerate(spec.objects):
        parts.append(noun_phrase(obj, rng, style))
        if i + 1 == len(spec.objects):
            break
        if i in links:
            phrases = RELATION_PHRASES[links[i]]
            if style == "geneval":
                parts.append(phrases[1])
            else:
                verb = verbs[rng.integers(len(verbs))]
                parts.append(" ".join(filter(None, (verb, phrases[rng.integers(len(phrases))]))))
        elif style == "geneval" or i + 2 == len(spec.objects):
            parts.append("and" if style == "geneval" else JOINERS[rng.integers(len(JOINERS))])
        else:
            parts[-1] += ","
    text = " ".join(parts)
    if style == "geneval":
        return f"{GENEVAL_OPENER} {text}"
    if opener.startswith("there"):
        opener = "there is" if spec.objects[0].count == 1 else "there are"
    if opener:
        text = f"{opener} {text}"
    if rng.random() < 0.25:
        text += " " + CLOSERS[rng.integers(len(CLOSERS))]
    return text
