"""The benchmark grid: a preset names agents, rewards, seeds and variants; a cell is one of each.

A cell is ``(agent, reward, seed, variant)``. ``agent`` is a registered agent
(``cotimage.agents.registry()``) or a baseline: ``base`` (the base generator, untrained) or
``best-of-N`` (N base-generator samples per prompt, the one the reward scores highest is kept).
``reward`` is the training reward (any :func:`cotimage.rewards.make` spec), ``variant`` a named
set of config overrides and training prompts. Evaluation always uses the checker, with one
fixed seed, so every cell is scored on the same prompts and sampler draws.

Baselines do not train, so they depend on fewer coordinates: ``base`` is one cell for the whole
grid, ``best-of-N`` one cell per reward; both ignore seeds and variants.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from cotimage.bench.settings import AGENT_SETTINGS

if TYPE_CHECKING:
    from cotimage.agents import AgentConfig
    from cotimage.suites import PromptRecord

BASE = "base"
_BEST_OF = re.compile(r"best-of-([1-9]\d*)")  # one spelling per N: best-of-04 would be a second name
#: Variant names and reward slugs become file names.
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
#: Variant override that is no config field: the number of iterative DPO rounds in the budget.
ROUNDS = "rounds"


def best_of(agent: str) -> int | None:
    """N of a ``best-of-N`` baseline name, else ``None``."""
    match = _BEST_OF.fullmatch(agent)
    return int(match.group(1)) if match else None


def is_baseline(agent: str) -> bool:
    """Whether ``agent`` is ``base`` or ``best-of-N`` (no training)."""
    return agent == BASE or best_of(agent) is not None


def _registry() -> dict[str, Any]:
    from cotimage.agents import registry  # torch and stable-baselines3 import only when a grid is checked or run

    return registry()


def check_agent(agent: str) -> None:
    """Raise ``ValueError`` listing the allowed names unless ``agent`` is one."""
    n = best_of(agent)
    if n is not None and n < 2:
        raise ValueError(f"agent={agent!r}: best-of-N needs N >= 2")
    if n is None and agent != BASE and agent not in _registry():
        raise ValueError(f"agent={agent!r} is unknown; allowed: {[*_registry(), BASE, 'best-of-N (e.g. best-of-4)']}")


def check_reward(spec: str) -> None:
    """Raise ``ValueError`` listing the registered rewards unless ``spec`` names one or a weighted sum of them.

    Checks the name only: learned rewards load their weights when a cell runs.
    """
    from cotimage import rewards
    from cotimage.rewards import ensemble

    if not isinstance(spec, str):
        raise ValueError(f"reward={spec!r} must be a reward spec string, e.g. 'scene' or 'scene+0.5*pref'")
    if ensemble.is_ensemble(spec):
        ensemble.parse(spec, rewards.names())
    elif spec not in rewards.names():
        raise ValueError(f"reward={spec!r} is unknown; registered rewards: {rewards.names()} (or a sum like 'scene+0.5*pref')")


def images_per_update(config: AgentConfig) -> tuple[int, str]:
    """The images an agent trains on per update under ``config``, and how that number comes about.

    ``learn`` stops only at the end of an update: after ``batch_size`` images, or for iterative
    DPO after a round (``prompts_per_round x samples_per_prompt`` images, drawn in whole batches).
    """
    if getattr(config, "mode", None) == "iterative":
        images = config.prompts_per_round * config.samples_per_prompt
        round_images = -(-images // config.batch_size) * config.batch_size
        return round_images, (
            f"round of {round_images} images (prompts_per_round={config.prompts_per_round} x "
            f"samples_per_prompt={config.samples_per_prompt}, in whole batches of batch_size={config.batch_size})"
        )
    return config.batch_size, f"batch_size={config.batch_size}"


def reward_slug(spec: str) -> str:
    """A file-name-safe form of a reward spec (``scene+0.5*pref`` -> ``scene+0.5xpref``)."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "-", spec.replace("*", "x"))


@dataclass(frozen=True)
class Variant:
    """A named set of overrides of the agents' configs and of the training prompts.

    Attributes:
        name: Short name, used in cell ids and tables (letters, digits, ``_ . -``).
        overrides: Config-field values, applied to each agent whose config has the field
            (e.g. ``{"group_size": 8, "samples_per_prompt": 8}`` sets GRPO's group and DPO's K).
            ``rounds`` sets iterative DPO's round count: ``prompts_per_round`` becomes
            ``budget // (rounds * samples_per_prompt)``.
        train_prompts: Train on this many prompts of the training suite, drawn evenly across
            its categories with a fixed seed, so all seeds of a variant share them (``None``: all).
        train_categories: Train on these categories of the training suite only (``None``: all).
        agents: Agents the variant applies to (``None``: all trained agents of the preset).
    """

    name: str = "default"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    train_prompts: int | None = None
    train_categories: tuple[str, ...] | None = None
    agents: tuple[str, ...] | None = None

    def applies_to(self, agent: str) -> bool:
        """Whether the variant makes cells of ``agent`` (never of a baseline)."""
        return not is_baseline(agent) and (self.agents is None or agent in self.agents)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (saved in results.json with the preset)."""
        return {**asdict(self), "overrides": dict(self.overrides)}

    def settings(self) -> dict[str, Any]:
        """What of the variant a cell's result depends on (saved in each cell's settings): all but
        ``agents``, which only says where else the variant applies."""
        return {k: v for k, v in self.to_dict().items() if k != "agents"}


@dataclass(frozen=True)
class Cell:
    """One run of the grid.

    Attributes:
        agent: Agent or baseline name.
        reward: Training reward spec (for ``best-of-N``: the selecting reward; ``None`` for ``base``).
        seed: Training seed (0 for baselines).
        variant: The variant (``None`` for baselines).
    """

    agent: str
    reward: str | None = None
    seed: int = 0
    variant: Variant | None = None

    @property
    def id(self) -> str:
        """File and TensorBoard name: ``base``, ``best-of-4__scene``, ``grpo__scene__default__s0``."""
        parts = [self.agent]
        if self.reward is not None:
            parts.append(reward_slug(self.reward))
        if self.variant is not None:
            parts += [self.variant.name, f"s{self.seed}"]
        return "__".join(parts)

    @property
    def group(self) -> tuple[str, str, str]:
        """``(agent, reward, variant)`` its seeds are aggregated over (``-`` where a baseline has none)."""
        return self.agent, self.reward or "-", self.variant.name if self.variant else "-"


@dataclass(frozen=True)
class Preset:
    """A benchmark grid with its budgets and evaluation.

    Attributes:
        name: Preset name; the default output directory is ``runs/bench/<name>``.
        description: One line for ``cotimage bench --list``.
        agents: Agent and baseline names, in table order.
        rewards: Training reward specs (one panel each in the curve plots).
        seeds: Seeds ``0 .. seeds - 1`` of every trained cell.
        budget: Training images per trained cell: a multiple of each agent's images per update
            (its ``batch_size``, or an iterative DPO round), as training stops only between updates.
        batch_size: Images per update of every agent (before ``agent_overrides``).
        variants: Variants of the trained agents.
        agent_overrides: Per agent, config fields over :data:`AGENT_SETTINGS` and ``batch_size``.
        agent_budgets: Per agent, a cap on ``budget`` (SB3PPO is about 10x slower than the rest).
        eval_every: Evaluate every this many training images (and always before and at the end; 0: only then);
            a multiple of each agent's ``batch_size``. An iterative DPO round that passes an
            evaluation point is evaluated at its end.
        eval_prompts: Evaluation prompts per category of each suite.
        eval_images_per_prompt: Images per evaluation prompt.
        eval_seed: The evaluation's seed, the same in every cell.
        in_domain: Suite of the in-domain evaluation (unseen prompts like the training ones).
        out_of_domain: Suite of the out-of-domain evaluation.
        train_suite: Suite the training prompts come from.
        generator: Generator every cell starts from.
        generalization_prompts: When set, the report adds finding 2: each reward's ranking
            accuracy (:func:`cotimage.rewards.generalization`, this many prompts per suite)
            against the gains of agents trained on it.
    """

    name: str
    agents: tuple[str, ...]
    description: str = ""
    rewards: tuple[str, ...] = ("scene",)
    seeds: int = 3
    budget: int = 2048
    batch_size: int = 64
    variants: tuple[Variant, ...] = (Variant(),)
    agent_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    agent_budgets: Mapping[str, int] = field(default_factory=dict)
    eval_every: int = 512
    eval_prompts: int = 10
    eval_images_per_prompt: int = 2
    eval_seed: int = 0
    in_domain: str = "shapes/compbench-val"
    out_of_domain: str = "shapes/geneval"
    train_suite: str = "shapes/compbench-train"
    generator: str = "shapes"
    generalization_prompts: int | None = None

    @property
    def trained_agents(self) -> tuple[str, ...]:
        """The agents that train (not ``base`` or ``best-of-N``)."""
        return tuple(a for a in self.agents if not is_baseline(a))

    # -- validation ------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ``ValueError`` naming the field and its allowed values for anything a run would trip on."""
        from cotimage import generators, suites

        for name, kinds in (("variants", (tuple, list)), ("agent_overrides", dict), ("agent_budgets", dict)):
            if not isinstance(getattr(self, name), kinds):
                raise ValueError(f"{name}={getattr(self, name)!r} must be a {'tuple' if name == 'variants' else 'dict'}")
        stray = [v for v in self.variants if not isinstance(v, Variant)]
        if stray:
            raise ValueError(f"variants must hold Variant(...)s, got {stray[0]!r}")
        if self.generator not in generators.names():
            raise ValueError(f"generator={self.generator!r} is unknown; generators: {generators.names()}")
        if not self.agents:
            raise ValueError("agents must name at least one agent or baseline")
        if len(set(self.agents)) != len(self.agents):
            raise ValueError(f"agents={list(self.agents)} repeats a name")
        for agent in self.agents:
            check_agent(agent)
        if not isinstance(self.rewards, (tuple, list)) or not self.rewards or len(set(self.rewards)) != len(self.rewards):
            raise ValueError(f"rewards={self.rewards!r} must be a non-empty tuple of reward specs without repeats")
        for spec in self.rewards:
            check_reward(spec)
        positive = {"seeds": self.seeds, "budget": self.budget, "batch_size": self.batch_size,
                    "eval_prompts": self.eval_prompts, "eval_images_per_prompt": self.eval_images_per_prompt,
                    **{f"agent_budgets[{a!r}]": b for a, b in self.agent_budgets.items()}}
        for name, value in positive.items():  # Python ints only: the preset is saved as JSON with every cell
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be an int >= 1")
        if isinstance(self.eval_seed, bool) or not isinstance(self.eval_seed, int) or self.eval_seed < 0:
            raise ValueError(f"eval_seed={self.eval_seed!r} must be an int >= 0")
        if isinstance(self.eval_every, bool) or not isinstance(self.eval_every, int) or self.eval_every < 0:
            raise ValueError(f"eval_every={self.eval_every!r} must be an int >= 0 (0: evaluate before and after training only)")
        if self.generalization_prompts is not None and (
            isinstance(self.generalization_prompts, bool) or not isinstance(self.generalization_prompts, int)
            or self.generalization_prompts < 1
        ):
            raise ValueError(f"generalization_prompts={self.generalization_prompts!r} must be None (no finding 2 "
                             "table) or an int >= 1 (prompts per suite)")

        for suite in (self.in_domain, self.out_of_domain, self.train_suite):
            if suite not in suites.NAMES:
                raise ValueError(f"suite={suite!r} is unknown; known suites: {list(suites.NAMES)}")
        for mapping, what in ((self.agent_overrides, "agent_overrides"), (self.agent_budgets, "agent_budgets")):
            stray = set(mapping) - set(self.trained_agents)
            if stray:
                raise ValueError(f"{what} names {sorted(stray)}, not trained agents of this preset: {list(self.trained_agents)}")
        for agent, overrides in self.agent_overrides.items():
            known = [f.name for f in fields(_registry()[agent].config_class)]
            if set(overrides) - set(known):
                raise ValueError(f"agent_overrides[{agent!r}]: {sorted(set(overrides) - set(known))} are no config field of {agent}; fields: {known}")
        if len({v.name for v in self.variants}) != len(self.variants):
            raise ValueError(f"variants {[v.name for v in self.variants]} must have distinct names")
        for variant in self.variants:
            self._validate_variant(variant)
        self._check_variants_cover(self.trained_agents)
        for cell in self.cells():
            if not is_baseline(cell.agent):
                self._check_schedule(cell, self.config(cell))  # config() runs the config's own checks too
            try:  # before training, not when the record is saved after it
                json.dumps(self.cell_settings(cell))
            except TypeError as error:
                raise ValueError(f"cell {cell.id}: its settings cannot be saved as JSON ({error}); "
                                 "give variants and agent_overrides Python values, not NumPy ones") from error

    def _check_variants_cover(self, agents: Sequence[str]) -> None:
        """Raise ``ValueError`` unless some variant applies to each trained agent of ``agents``."""
        bare = [a for a in agents if not is_baseline(a) and not any(v.applies_to(a) for v in self.variants)]
        if bare:
            scope = {v.name: "all" if v.agents is None else list(v.agents) for v in self.variants}
            raise ValueError(f"no variant of preset {self.name!r} applies to {bare}; its variants, with the agents they apply to: {scope}")

    def _check_schedule(self, cell: Cell, config: AgentConfig) -> None:
        """Raise ``ValueError`` unless the cell's budget and evaluation points fall between updates."""
        budget = self.budget_of(cell.agent)
        name = "budget" if budget == self.budget else f"agent_budgets[{cell.agent!r}]"
        images, update = images_per_update(config)
        if budget % images:
            raise ValueError(
                f"{name}={budget} is not a multiple of {cell.agent}'s {update}, its images per update in variant "
                f"{cell.variant.name!r}: training stops only between updates, so it would train {-(-budget // images) * images} images"
            )
        if self.eval_every % config.batch_size:
            raise ValueError(
                f"eval_every={self.eval_every} is not a multiple of {cell.agent}'s batch_size={config.batch_size} "
                f"in variant {cell.variant.name!r}: an evaluation can only run between updates"
            )

    def _validate_variant(self, variant: Variant) -> None:
        from cotimage import suites

        if not isinstance(variant.name, str) or not _NAME.fullmatch(variant.name):
            raise ValueError(f"variant name {variant.name!r} must be letters, digits and _ . - only")
        if variant.agents is not None and not set(variant.agents) <= set(self.trained_agents):
            raise ValueError(f"variant {variant.name!r}: agents={list(variant.agents)} must be among {list(self.trained_agents)}")
        applicable = [a for a in self.trained_agents if variant.applies_to(a)]
        known = {f.name for a in applicable for f in fields(_registry()[a].config_class)}
        known |= {ROUNDS} if "prompts_per_round" in known else set()
        if not isinstance(variant.overrides, dict):
            raise ValueError(f"variant {variant.name!r}: overrides={variant.overrides!r} must be a dict of config fields")
        unknown = set(variant.overrides) - known
        if unknown:
            raise ValueError(f"variant {variant.name!r}: overrides {sorted(unknown)} are no config field of {applicable}; fields: {sorted(known)}")
        prompts = variant.train_prompts
        if prompts is not None and (isinstance(prompts, bool) or not isinstance(prompts, int) or prompts < 1):
            raise ValueError(f"variant {variant.name!r}: train_prompts={prompts!r} must be None or an int >= 1")
        allowed = suites.categories(self.train_suite)
        if variant.train_categories is not None and not (variant.train_categories and set(variant.train_categories) <= set(allowed)):
            raise ValueError(f"variant {variant.name!r}: train_categories={variant.train_categories} must be a non-empty subset of {allowed}")

    def with_agents(self, agents: Sequence[str]) -> Preset:
        """This preset on ``agents`` instead (``cotimage bench --agents``).

        The ``agent_overrides`` and ``agent_budgets`` of agents left out drop out, and so do the
        variants limited to agents that are all left out; the other variants limited to some
        agents keep those of ``agents``.

        Raises:
            ValueError: for an unknown agent, or a trained one that no variant of this preset applies to.
        """
        for agent in agents:
            check_agent(agent)
        self._check_variants_cover(agents)
        keep = set(agents)
        return replace(
            self,
            agents=tuple(agents),
            agent_overrides={k: v for k, v in self.agent_overrides.items() if k in keep},
            agent_budgets={k: v for k, v in self.agent_budgets.items() if k in keep},
            variants=tuple(
                v if v.agents is None else replace(v, agents=tuple(a for a in v.agents if a in keep))
                for v in self.variants
                if v.agents is None or keep & set(v.agents)
            ),
        )

    # -- cells -----------------------------------------------------------------------------------
    def cells(self) -> list[Cell]:
        """Every cell: baselines first, then seed by seed (an interrupted grid has whole seeds)."""
        out = [Cell(BASE)] if BASE in self.agents else []
        out += [Cell(a, r) for r in self.rewards for a in self.agents if best_of(a) is not None]
        out += [
            Cell(agent, reward, seed, variant)
            for seed in range(self.seeds)
            for reward in self.rewards
            for variant in self.variants
            for agent in self.trained_agents
            if variant.applies_to(agent)
        ]
        return out

    def budget_of(self, agent: str) -> int:
        """Training images of a trained agent's cells."""
        return min(self.budget, self.agent_budgets.get(agent, self.budget))

    def eval_points(self, agent: str) -> list[int]:
        """Image counts to evaluate a trained agent at: 0, every ``eval_every``, and its budget."""
        budget = self.budget_of(agent)
        return sorted({0, budget, *(range(self.eval_every, budget, self.eval_every) if self.eval_every else ())})

    def config(self, cell: Cell) -> AgentConfig:
        """The trained cell's agent config: agent settings < ``batch_size`` < ``agent_overrides`` < variant."""
        cls = _registry()[cell.agent].config_class
        names = {f.name for f in fields(cls)}
        values = {**AGENT_SETTINGS.get(cell.agent, {}), "batch_size": self.batch_size, **self.agent_overrides.get(cell.agent, {})}
        values |= {k: v for k, v in cell.variant.overrides.items() if k in names}
        if ROUNDS in cell.variant.overrides and "prompts_per_round" in names:
            rounds = cell.variant.overrides[ROUNDS]
            k = values.get("samples_per_prompt", next(f.default for f in fields(cls) if f.name == "samples_per_prompt"))
            per_round = self.budget_of(cell.agent) // (rounds * k) if isinstance(rounds, int) and rounds >= 1 else 0
            if per_round < 1:
                raise ValueError(f"variant {cell.variant.name!r}: rounds={rounds!r} must be an int in [1, budget / samples_per_prompt]")
            values |= {"mode": "iterative", "prompts_per_round": per_round}
        return cls(**values)

    def train_prompts(self, variant: Variant) -> str | list[PromptRecord]:
        """The env's ``suite``: the training suite's name, or the variant's selection of its records."""
        import numpy as np

        from cotimage import suites
        from cotimage.rewards.generalization import stratified_prompts

        if variant.train_prompts is None and variant.train_categories is None:
            return self.train_suite
        records = suites.load(self.train_suite)
        if variant.train_categories is not None:
            records = [r for r in records if r.category in variant.train_categories]
        return stratified_prompts(records, variant.train_prompts, np.random.default_rng(0))

    def cell_settings(self, cell: Cell) -> dict[str, Any]:
        """Everything that determines a cell's result; a saved cell is reused only when these match."""
        evaluation = {
            "in_domain": self.in_domain,
            "out_of_domain": self.out_of_domain,
            "prompts_per_category": self.eval_prompts,
            "images_per_prompt": self.eval_images_per_prompt,
            "seed": self.eval_seed,
        }
        from cotimage.shapes import CHECKER_VERSION

        # The checker scores every evaluation (and the scene rewards): another version is another result.
        evaluation["checker"] = CHECKER_VERSION
        from cotimage.generators import weights_digest

        settings: dict[str, Any] = {
            "agent": cell.agent, "reward": cell.reward, "generator": self.generator, "eval": evaluation,
            "generator_weights": weights_digest(self.generator),  # Janus-Pro-1B and -7B are both "janus-pro"
        }
        if cell.reward is not None:  # retrained reward weights make a new cell, not a reuse of the old one
            from cotimage.rewards import weights_digest

            settings["reward_weights"] = weights_digest(cell.reward)
        if best_of(cell.agent) is not None:
            settings["best_of"] = best_of(cell.agent)
        if not is_baseline(cell.agent):
            settings |= {
                "seed": cell.seed,
                "variant": cell.variant.settings(),
                "train_suite": self.train_suite,
                "budget": self.budget_of(cell.agent),
                "config": self.config(cell).to_dict(),
                "eval_points": self.eval_points(cell.agent),
            }
        return settings

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (saved in results.json)."""
        return {
            **asdict(self),
            "variants": [v.to_dict() for v in self.variants],
            "agent_overrides": {k: dict(v) for k, v in self.agent_overrides.items()},
            "agent_budgets": dict(self.agent_budgets),
        }
