"""Every agent config rejects a bad field at construction, naming it, whatever the field's type."""

import dataclasses
import json
import math

import numpy as np
import pytest

from cotimage import suites
from cotimage.agents import AgentConfig, DPOConfig, GRPOConfig, PPOConfig, REINFORCEConfig

CONFIGS = (AgentConfig, GRPOConfig, DPOConfig, PPOConfig, REINFORCEConfig)


def annotated(cls, *types):
    """Names of ``cls``'s fields whose annotation (a string: the modules use postponed annotations) is one of ``types``."""
    return [f.name for f in dataclasses.fields(cls) if f.type in types]


def own(cls, *types):
    """``annotated`` fields ``cls`` adds to :class:`AgentConfig` (all of them for ``AgentConfig`` itself)."""
    shared = set() if cls is AgentConfig else {f.name for f in dataclasses.fields(AgentConfig)}
    return [name for name in annotated(cls, *types) if name not in shared]


def cases(types, bad_values):
    return [(cls, name, value) for cls in CONFIGS for name in own(cls, *types) for value in bad_values]


@pytest.mark.parametrize(("cls", "name", "value"), cases(("int", "int | None"), [2.5, 4.0, True, "4"]))
def test_int_fields_reject_non_ints_and_bools(cls, name, value):
    with pytest.raises(ValueError, match=rf"^{name}=.* must be (None or )?an int$"):
        cls(**{name: value})


@pytest.mark.parametrize(("cls", "name", "value"), cases(("float", "float | None"), [math.inf, -math.inf, math.nan, True, "1", 10**400]))
def test_float_fields_reject_non_finite_and_non_numbers(cls, name, value):
    with pytest.raises(ValueError, match=rf"^{name}=.* must be (None or )?a finite number$"):
        cls(**{name: value})


@pytest.mark.parametrize(("cls", "name"), [(cls, name) for cls in CONFIGS for name in own(cls, "bool")])
def test_bool_fields_reject_non_bools(cls, name):
    with pytest.raises(ValueError, match=rf"^{name}=1 must be a bool$"):
        cls(**{name: 1})


def test_numpy_scalars_and_int_floats_are_accepted_as_python_types():
    config = GRPOConfig(batch_size=np.int64(16), group_size=np.int32(4), learning_rate=np.float32(1e-4), beta=0, top_k=np.int64(5))
    assert [type(v) for v in (config.batch_size, config.group_size, config.learning_rate, config.beta, config.top_k)] == [int, int, float, float, int]
    assert PPOConfig(normalize_advantage=np.bool_(False)).normalize_advantage is False
    assert GRPOConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config  # saves as agent.json does


@pytest.mark.parametrize("cls", CONFIGS)
def test_defaults_are_valid_and_round_trip_through_json(cls):
    config = cls(**({"mode": "iterative", "pairs_per_update": 4} if cls is DPOConfig else {}))
    assert cls.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: AgentConfig(eval_suite="nope"), "eval_suite"),
        (lambda: AgentConfig(eval_suite="shapes/geneval-val"), "eval_suite"),
        (lambda: AgentConfig(eval_prompts=0), "eval_prompts"),
        (lambda: AgentConfig(eval_prompts=-1), "eval_prompts"),
        (lambda: GRPOConfig(eval_images_per_prompt=0), "eval_images_per_prompt"),
        (lambda: GRPOConfig(advantage_epsilon=-1), "advantage_epsilon"),
        (lambda: GRPOConfig(advantage_epsilon=0), "advantage_epsilon"),
    ],
)
def test_eval_fields_and_advantage_epsilon_are_range_checked(make, field):
    with pytest.raises(ValueError, match=rf"^{field}="):
        make()


def test_eval_fields_name_the_allowed_values_and_none_evaluates_every_prompt():
    with pytest.raises(ValueError, match=r"eval_suite='nope' is unknown; known suites: \['shapes/compbench-train'"):
        AgentConfig(eval_suite="nope")
    assert all(AgentConfig(eval_suite=name).eval_suite == name for name in suites.NAMES)
    assert AgentConfig(eval_prompts=None).eval_prompts is None
