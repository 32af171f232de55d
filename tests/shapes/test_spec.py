import json

import numpy as np
import pytest

from cotimage import suites
from cotimage.shapes.spec import (
    COLORS,
    OPPOSITE_RELATION,
    RELATIONS,
    SHAPES,
    SIZES,
    ObjectSpec,
    Relation,
    SceneSpec,
    alter,
    alterations,
)


def pair(relation="left of", **first):
    """A circle and a square with one relation between them."""
    return SceneSpec((ObjectSpec("circle", **first), ObjectSpec("square")), (Relation(0, relation, 1),))


@pytest.mark.parametrize(
    "kwargs, field, allowed",
    [
        ({"shape": "hexagon"}, "shape", SHAPES),
        ({"shape": "circle", "color": "pink"}, "color", COLORS),
        ({"shape": "circle", "size": "huge"}, "size", SIZES),
        ({"shape": "circle", "count": 0}, "count", range(1, 5)),
        ({"shape": "circle", "count": 5}, "count", range(1, 5)),
    ],
)
def test_object_spec_error_names_field_and_allowed_values(kwargs, field, allowed):
    with pytest.raises(ValueError, match=f"^{field}=") as error:
        ObjectSpec(**kwargs)
    for value in allowed:
        assert repr(value) in str(error.value)


@pytest.mark.parametrize("count", [True, 2.0, "2"])
def test_count_must_be_an_int(count):
    with pytest.raises(ValueError, match="count="):
        ObjectSpec("circle", count=count)


def test_numpy_integers_are_ints_and_are_stored_as_ints():
    obj = ObjectSpec("circle", count=np.int64(2))
    relation = Relation(np.int32(0), "left of", np.uint8(1))
    assert obj == ObjectSpec("circle", count=2) and type(obj.count) is int
    assert relation == Relation(0, "left of", 1) and type(relation.subject) is type(relation.object) is int
    json.dumps(SceneSpec((ObjectSpec("circle"), ObjectSpec("square")), (relation,)).to_dict())


@pytest.mark.parametrize("index", [0.0, "0", True, None])
def test_relation_indices_must_be_ints(index):
    with pytest.raises(ValueError, match=r"^relation.subject=.* must be an int \(an index into objects\)"):
        Relation(index, "left of", 1)


def test_unknown_relation_error_lists_relations():
    with pytest.raises(ValueError, match="relation='near'") as error:
        Relation(0, "near", 1)
    for relation in RELATIONS:
        assert repr(relation) in str(error.value)


def test_scene_needs_an_object():
    with pytest.raises(ValueError, match="objects"):
        SceneSpec(())


def test_duplicate_shapes_rejected():
    with pytest.raises(ValueError, match="different shapes"):
        SceneSpec((ObjectSpec("circle", "red"), ObjectSpec("circle", "blue")))


def test_relation_to_a_group_of_several_rejected():
    objects = (ObjectSpec("circle", count=2), ObjectSpec("square"))
    with pytest.raises(ValueError, match="relation.subject=0 must point to a group with count 1"):
        SceneSpec(objects, (Relation(0, "left of", 1),))


def test_self_relation_rejected():
    objects = (ObjectSpec("circle"), ObjectSpec("square"))
    with pytest.raises(ValueError, match="must differ"):
        SceneSpec(objects, (Relation(1, "above", 1),))


def test_relation_index_out_of_range_rejected():
    objects = (ObjectSpec("circle"), ObjectSpec("square"))
    with pytest.raises(ValueError, match=r"relation.object=2 is not allowed; choose one of \[0, 1\]"):
        SceneSpec(objects, (Relation(0, "above", 2),))


def test_pair_related_twice_rejected():
    objects = (ObjectSpec("circle"), ObjectSpec("square"))
    with pytest.raises(ValueError, match="once"):
        SceneSpec(objects, (Relation(0, "above", 1), Relation(1, "left of", 0)))


def test_relations_that_cannot_all_hold_are_rejected():
    objects = (ObjectSpec("circle"), ObjectSpec("square"), ObjectSpec("cross"))
    cycle = (Relation(0, "left of", 1), Relation(1, "left of", 2), Relation(2, "left of", 0))
    with pytest.raises(ValueError, match="relations cannot all hold: their left of / right of order goes round"):
        SceneSpec(objects, cycle)
    with pytest.raises(ValueError, match="above / below"):
        SceneSpec(objects, (Relation(0, "above", 1), Relation(2, "below", 1), Relation(0, "below", 2)))
    SceneSpec(objects, (Relation(0, "left of", 1), Relation(2, "right of", 1), Relation(0, "above", 2)))  # consistent


def test_relations_must_be_relation_items():
    with pytest.raises(ValueError, match="relations must hold Relation"):
        SceneSpec((ObjectSpec("circle"), ObjectSpec("square")), ((0, "left of", 1),))


@pytest.mark.parametrize(
    "data, match",
    [
        ({"objects": [{"shape": "circle"}], "colour": "red"}, r"unknown keys \['colour'\]"),
        ({"objects": [{"shape": "circle", "colour": "red"}]}, r"unknown keys \['colour'\]"),
        ({"objects": [{"color": "red"}]}, "'shape'"),
        ({"objects": ["circle"]}, "object must be a dict"),
        ({"relations": []}, "'objects'"),
        ({"objects": [{"shape": "circle"}], "relations": None}, "spec 'relations' must be a list, got None"),
        ({"objects": None}, "spec 'objects' must be a list, got None"),
        ({"objects": "circle"}, "spec 'objects' must be a list, got 'circle'"),
    ],
)
def test_from_dict_rejects_malformed_specs(data, match):
    with pytest.raises(ValueError, match=match):
        SceneSpec.from_dict(data)


@pytest.mark.parametrize("relation", [[0, "left of"], [0, "left of", 1, 2], 0, "abc"])
def test_from_dict_rejects_malformed_relation(relation):
    data = {"objects": [{"shape": "circle"}, {"shape": "square"}], "relations": [relation]}
    with pytest.raises(ValueError, match="relation"):
        SceneSpec.from_dict(data)


def test_to_dict_from_dict_round_trip():
    spec = SceneSpec(
        (ObjectSpec("circle", "red", "small"), ObjectSpec("square", size="large"), ObjectSpec("cross", count=3)),
        (Relation(1, "below", 0),),
    )
    assert SceneSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_to_dict_from_dict_round_trip_on_every_shipped_spec():
    specs = {r.spec for name in suites.NAMES for r in suites.load(name)}
    assert all(SceneSpec.from_dict(json.loads(json.dumps(s.to_dict()))) == s for s in specs)


def test_num_objects_sums_counts():
    assert SceneSpec((ObjectSpec("circle", count=3), ObjectSpec("square"))).num_objects == 4


def test_alterations_of_a_related_pair():
    spec = pair("left of", color="red")
    kinds = [a.kind for a in alterations(spec)]
    # 6 other colours of the circle, 3 unused shapes for each group, no count (both are related), one flip
    assert kinds == ["color"] * 6 + ["shape"] * 6 + ["relation"]
    assert alterations(spec)[-1].spec.relations == (Relation(0, OPPOSITE_RELATION["left of"], 1),)


def test_alterations_change_one_field_of_one_group():
    spec = SceneSpec((ObjectSpec("circle", "red", count=2), ObjectSpec("square", "blue")))
    for alteration in alterations(spec):
        changed = [(a, b) for a, b in zip(spec.objects, alteration.spec.objects, strict=True) if a != b]
        assert len(changed) == 1, alteration.change
        (before, after), fields = changed[0], ("shape", "color", "size", "count")
        assert [f for f in fields if getattr(before, f) != getattr(after, f)] == [alteration.kind]


def test_alter_is_deterministic_under_a_seed_and_draws_from_alterations():
    spec = SceneSpec((ObjectSpec("circle", "red"), ObjectSpec("square", count=2)))
    assert alter(spec, 7) == alter(spec, 7)
    assert {alter(spec, seed) for seed in range(40)} <= set(alterations(spec))


def test_alter_skips_undrawable_alterations():
    # five large objects never fit the 32 px canvas, so flipping any relation is undrawable,
    # and a chain of relations over all five shapes leaves no other kind of alteration
    objects = tuple(ObjectSpec(shape, size="large") for shape in SHAPES)
    spec = SceneSpec(objects, tuple(Relation(i, "left of", i + 1) for i in range(4)))
    assert {a.kind for a in alterations(spec)} == {"relation"}
    with pytest.raises(ValueError, match="no drawable alteration"):
        alter(spec, 0)


def test_alter_names_a_bad_rng():
    with pytest.raises(ValueError, match="^rng=-1 must be None, an int >= 0, a sequence of them or a numpy Generator"):
        alter(pair(), -1)
    with pytest.raises(ValueError, match="^rng=True must be"):  # numpy would read it as 1
        alter(pair(), True)


def test_a_scene_of_no_list_and_an_alteration_of_no_scene_are_named():
    from cotimage.shapes.spec import SceneSpec, alter

    with pytest.raises(ValueError, match="objects must be a list or tuple, got None"):
        SceneSpec(None)
    with pytest.raises(ValueError, match="spec must be a SceneSpec, got 'a red circle'"):
        alter("a red circle")
