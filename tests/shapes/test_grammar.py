import numpy as np
import pytest

from cotimage import suites
from cotimage.shapes.grammar import GENEVAL_OPENER, describe, parse
from cotimage.shapes.spec import COLORS, MAX_COUNT, RELATIONS, SHAPES, SIZES, ObjectSpec, Relation, SceneSpec


def random_spec(rng: np.random.Generator) -> SceneSpec:
    """1 to 4 groups with random attributes; relations between some consecutive single objects."""
    shapes = rng.permutation(SHAPES)[: rng.integers(1, 5)]
    objects = [
        ObjectSpec(
            str(shape),
            [None, *COLORS][rng.integers(len(COLORS) + 1)],
            [None, *SIZES][rng.integers(len(SIZES) + 1)],
            int(rng.integers(1, MAX_COUNT + 1)) if rng.random() < 0.5 else 1,
        )
        for shape in shapes
    ]
    relations = [
        Relation(i, RELATIONS[rng.integers(len(RELATIONS))], i + 1)
        for i in range(len(objects) - 1)
        if objects[i].count == objects[i + 1].count == 1 and rng.random() < 0.7
    ]
    return SceneSpec(tuple(objects), tuple(relations))


@pytest.mark.parametrize("style", ["compbench", "geneval"])
def test_parse_inverts_describe(style):
    rng = np.random.default_rng(0)
    specs = [random_spec(rng) for _ in range(1000)]
    assert sum(len(s.relations) for s in specs) > 300  # the sampler does exercise relations
    mismatches = [(t, s) for s in specs if parse(t := describe(s, rng, style)) != s]
    assert not mismatches, mismatches[:3]


@pytest.mark.parametrize(
    "prompt, spec",
    [
        (
            "a red circle to the left of a blue square",
            SceneSpec((ObjectSpec("circle", "red"), ObjectSpec("square", "blue")), (Relation(0, "left of", 1),)),
        ),
        ("two squares that are green", SceneSpec((ObjectSpec("square", "green", count=2),))),
        ("an orange triangle", SceneSpec((ObjectSpec("triangle", "orange"),))),
        (
            "A photo of a big cross, three small diamonds and a circle in white.",
            SceneSpec((ObjectSpec("cross", size="large"), ObjectSpec("diamond", size="small", count=3),
                       ObjectSpec("circle", "white"))),
        ),
    ],
)
def test_parse_hand_written_prompts(prompt, spec):
    assert parse(prompt) == spec


def test_unknown_word_error_names_the_word():
    with pytest.raises(ValueError, match="unknown word 'hexagon'"):
        parse("a red hexagon")


def test_characters_outside_the_grammar_rejected():
    with pytest.raises(ValueError, match="'2'"):
        parse("2 circles")


@pytest.mark.parametrize(
    "prompt", ["a circle to the left of", "to the left of a square", "a circle above below a square"]
)
def test_dangling_relation_rejected(prompt):
    with pytest.raises(ValueError, match="relation|ends before"):
        parse(prompt)


@pytest.mark.parametrize(
    "prompt, match",
    [
        ("a circle and a red", "ends before its last object"),
        ("a circle that is", "ends before its last object"),
        ("a red to the left of a square", "needs an object before it"),
        ("a circle that is square", "expected a color"),
        ("that is red", "must follow a shape"),
        ("a red blue circle", "two colors"),
    ],
)
def test_dangling_or_misplaced_attribute_rejected(prompt, match):
    with pytest.raises(ValueError, match=match):
        parse(prompt)


@pytest.mark.parametrize(
    "prompt, match",
    [
        ("a circles", "a count of 1 takes one 'circle', not 'circles'"),
        ("two circle", "a count of 2 takes the plural 'circles', not 'circle'"),
        ("a circle square", "'square' must be joined to the object before it"),
        ("a circle and", "ends before its last object"),
        ("and a circle", "'and' must come between two objects"),
        ("a circle above is a square", "a verb must come before a relation"),
        ("a circle there is a square", "'square' must be joined to the object before it"),
        ("two circles to the left of a square", r"a relation \('left of'\) holds between single objects, not groups of 2 and 1"),
    ],
)
def test_ungrammatical_prompts_are_named_not_read_as_another_scene(prompt, match):
    with pytest.raises(ValueError, match=match):
        parse(prompt)


@pytest.mark.parametrize(
    "prompt",
    [
        "a red circle is placed above a blue square",  # verbs in a row
        "a red circle and a blue square, on a black background",  # a comma before the closer
        "a red circle in the picture and a blue square",  # a closer mid-prompt
        "there is a red circle and there is a blue square",  # an opener after a joiner
        "A red circle is to the left of a blue square. A green triangle.",  # full stops separate objects
    ],
)
def test_natural_phrasings_users_write_still_parse(prompt):
    assert len(parse(prompt).objects) >= 2


@pytest.mark.parametrize("prompt", ["", "   ", None])
def test_empty_prompt_rejected(prompt):
    with pytest.raises(ValueError, match="non-empty string"):
        parse(prompt)


def test_prompt_without_a_shape_rejected():
    with pytest.raises(ValueError, match="names no shape"):
        parse("a photo of")


@pytest.mark.parametrize("name", suites.NAMES)
def test_every_suite_text_parses_to_its_spec(name):
    mismatches = [r for r in suites.load(name) if parse(r.text) != r.spec]
    assert not mismatches, mismatches[:3]


def test_compbench_writer_never_uses_the_geneval_opener():
    rng = np.random.default_rng(1)
    texts = [describe(random_spec(rng), rng, "compbench") for _ in range(2000)]
    assert not [t for t in texts if GENEVAL_OPENER in t]


def test_geneval_writer_always_uses_the_geneval_opener():
    rng = np.random.default_rng(2)
    assert all(describe(random_spec(rng), rng, "geneval").startswith(GENEVAL_OPENER + " ") for _ in range(200))


def test_describe_rejects_relations_between_non_consecutive_groups():
    spec = SceneSpec((ObjectSpec("circle"), ObjectSpec("square"), ObjectSpec("cross")), (Relation(0, "above", 2),))
    with pytest.raises(ValueError, match="consecutive"):
        describe(spec, 0)


def test_describe_rejects_unknown_style():
    with pytest.raises(ValueError, match="style='dalle'"):
        describe(SceneSpec((ObjectSpec("circle"),)), 0, "dalle")


def test_describe_takes_a_prompt_or_spec_dict_as_render_and_check_do():
    spec = parse("a red circle to the left of a blue square")
    assert describe("a red circle to the left of a blue square", 4) == describe(spec, 4)
    assert describe(spec.to_dict(), 4) == describe(spec, 4)
    with pytest.raises(ValueError, match="expected a SceneSpec, prompt, spec dict or suite record, got int"):
        describe(3)


def test_describe_names_a_bad_rng():
    with pytest.raises(ValueError, match="^rng=-1 must be None, an int >= 0, a sequence of them or a numpy Generator"):
        describe("a circle", -1)
