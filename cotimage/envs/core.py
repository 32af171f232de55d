"""Batched episode logic shared by :class:`CotImageEnv` and :class:`CotImageVectorEnv`.

One episode is one image: ``num_image_tokens`` steps, each choosing the next image token.
Every row of a batch is always at the same step, because every episode has the same length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from cotimage import generators, rewards, suites
from cotimage.checks import is_finite, is_int
from cotimage.generators import Generator
from cotimage.suites import PromptRecord

#: The value of an image-token slot that has not been drawn yet.
NOT_DRAWN = -1
#: Reset options naming one prompt, and their list forms.
_SINGLE, _PLURAL = ("prompt", "index"), ("prompts", "indices")


def custom_record(text: str) -> PromptRecord | str:
    """A user's prompt as a record when the shapes grammar parses it, else the bare text."""
    from cotimage.shapes import parse

    try:
        return PromptRecord(text, "custom", "custom", parse(text))
    except ValueError:
        return text


def text_of(prompt: PromptRecord | str) -> str:
    return prompt if isinstance(prompt, str) else prompt.text


class EpisodeBatch:
    """The state of ``n`` episodes: prompts, tokens drawn so far, shaping potentials.

    Args:
        n: Number of episodes stepped together.
        generator: Generator name or instance (decodes tokens, encodes prompts).
        reward: Reward name, model or callable ``f(images, prompts) -> scores``.
        suite: Suite name, or your own list of prompts (texts or records), that ``reset``
            samples prompts from.
        process_reward_every: Add potential-based shaping every this many token rows
            (``None`` for terminal reward only).
        process_reward_coef: Scale of the shaping potential.
    """

    def __init__(
        self,
        n: int,
        generator: str | Generator = "shapes",
        reward: str | rewards.RewardModel | Callable = "scene",
        suite: str | Sequence[str | PromptRecord] = "shapes/compbench-train",
        process_reward_every: int | None = None,
        process_reward_coef: float = 1.0,
    ) -> None:
        self.generator = generators.load(generator) if isinstance(generator, str) else generator
        if isinstance(self.generator, generators.Policy):
            self.generator = generators.as_generator(self.generator)
        if not isinstance(self.generator, Generator):
            raise ValueError(f"generator must be a name in {generators.names()} or a Generator, got {generator!r}")
        self.reward = rewards.make(reward)
        #: The arguments that rebuild these episodes at another batch size (with the loaded models).
        self.settings = {
            "generator": self.generator,
            "reward": self.reward,
            "suite": suite,
            "process_reward_every": process_reward_every,
            "process_reward_coef": process_reward_coef,
        }
        self.records = self._suite_records(suite)
        self.check_scenes(self.records)
        self.suite = suite if isinstance(suite, str) else "custom"
        self.length = self.generator.num_image_tokens
        self.row = int(round(self.length**0.5))
        if process_reward_every is not None and (not is_int(process_reward_every) or not 1 <= process_reward_every < self.row):
            raise ValueError(f"process_reward_every={process_reward_every!r} must be None or an int in [1, {self.row})")
        if not is_finite(process_reward_coef) or not abs(process_reward_coef) <= np.finfo(np.float32).max:
            raise ValueError(f"process_reward_coef={process_reward_coef!r} must be a finite number (in float32's range: "
                             "rewards are float32)")
        self.shaping_interval = None if process_reward_every is None else int(process_reward_every) * self.row
        self.shaping_coef = float(process_reward_coef)
        self.n = n
        side = self.generator.image_size
        #: Token shown in undrawn slots of partial images: the encoding of a black patch.
        self.blank = int(self.generator.encode_images(np.zeros((1, side, side, 3), np.uint8))[0, 0])
        self.prompts: list[PromptRecord | str] = []
        self.prompt_ids = np.zeros((n, self.generator.max_prompt_tokens + 1), np.int64)
        self.tokens = np.full((n, self.length), NOT_DRAWN, np.int64)
        self.step_index = 0
        self.potential = np.zeros(n, np.float32)
        self.done = True

    @staticmethod
    def _suite_records(suite: str | Sequence[str | PromptRecord]) -> list[PromptRecord | str]:
        if isinstance(suite, str):
            return suites.load(suite)
        if not isinstance(suite, (list, tuple)) or not suite:  # a generator would be used up by the checks
            raise ValueError(f"suite must be a suite name in {list(suites.NAMES)} or a non-empty list of prompts, got {suite!r}")
        wrong = [p for p in suite if not isinstance(p, (str, PromptRecord))]
        if wrong:
            raise ValueError(f"suite must list prompt texts or PromptRecords, got {wrong[0]!r}")
        return [p if isinstance(p, PromptRecord) else custom_record(p) for p in suite]

    # -- spaces --------------------------------------------------------------------------------
    def observation_space(self) -> spaces.Dict:
        """Single-episode observation space: integer Boxes only, so SB3 does not one-hot them."""
        vocab = self._prompt_vocab()
        width = self.prompt_ids.shape[1]
        return spaces.Dict(
            {
                "prompt": spaces.Box(0, vocab - 1, (width,), np.int64),
                "image_tokens": spaces.Box(NOT_DRAWN, self.generator.codebook_size - 1, (self.length,), np.int64),
                "step": spaces.Box(0, self.length, (1,), np.int64),
            }
        )

    def _prompt_vocab(self) -> int:
        tokenizer = getattr(self.generator, "tokenizer", None)
        return len(tokenizer.vocab) if hasattr(tokenizer, "vocab") else int(np.iinfo(np.int32).max)

    def observation(self) -> dict[str, np.ndarray]:
        return {
            "prompt": self.prompt_ids.copy(),
            "image_tokens": self.tokens.copy(),
            "step": np.full((self.n, 1), self.step_index, np.int64),
        }

    # -- transitions ---------------------------------------------------------------------------
    def sample_prompts(self, rng: np.random.Generator, group_size: int = 1) -> list[PromptRecord]:
        """``n / group_size`` suite prompts drawn with ``rng``, each repeated ``group_size`` times."""
        picks = rng.integers(len(self.records), size=self.n // group_size)
        return [self.records[i] for i in picks for _ in range(group_size)]

    def resolve(self, options: Mapping[str, Any] | None, rng: np.random.Generator) -> list[PromptRecord | str]:
        """Prompts for the next episodes from reset ``options`` (see the env docstrings)."""
        if options is not None and not isinstance(options, Mapping):
            raise ValueError(f"reset options must be a dict, got {type(options).__name__}")
        options = dict(options or {})
        unknown = set(options) - {*_SINGLE, *_PLURAL, "group_size"}
        if unknown:
            raise ValueError(
                f"reset options {sorted(unknown)} are unknown; allowed: prompt, prompts, index, indices, group_size"
            )
        group = options.get("group_size", 1)
        if not is_int(group) or group < 1 or self.n % group:
            raise ValueError(f"group_size={group!r} must be a positive int dividing num_envs={self.n}")
        given = [k for k in (*_SINGLE, *_PLURAL) if k in options]
        if len(given) > 1:
            raise ValueError("pass at most one of the reset options prompt, prompts, index, indices")
        if not given:
            return self.sample_prompts(rng, group)
        key = given[0]
        value = options[key]
        if key in _SINGLE:
            chosen = [value]
        elif isinstance(value, Iterable) and not isinstance(value, (str, Mapping, PromptRecord)):
            chosen = list(value)  # a list, tuple, range, array, ...
        else:
            single = {"prompts": "prompt", "indices": "index"}[key]
            raise ValueError(f"reset option {key!r} takes a list, got {type(value).__name__}; for one, pass {single!r}")
        if len(chosen) * group != self.n:
            raise ValueError(f"reset got {len(chosen)} prompts x group_size {group}; need num_envs={self.n} in all")
        prompts = [self._prompt(key, p) for p in chosen]
        return [p for p in prompts for _ in range(group)]

    def _prompt(self, key: str, value: Any) -> PromptRecord | str:
        """One prompt from reset option ``key``.

        ``prompt`` takes a text or record, ``index`` and ``indices`` a suite index, and
        ``prompts`` any of them (the vector env's documented mix).
        """
        if key != "index" and key != "indices":
            if isinstance(value, PromptRecord):
                return value
            if isinstance(value, str):
                return custom_record(value)
        if key != "prompt" and is_int(value):
            if not 0 <= value < len(self.records):
                raise ValueError(f"index={value} is out of range for suite {self.suite!r} of {len(self.records)} prompts")
            return self.records[int(value)]
        allowed = {"prompt": "a prompt text or PromptRecord", "prompts": "prompt texts, PromptRecords or suite indices"}
        raise ValueError(f"reset option {key!r} takes {allowed.get(key, 'suite indices (ints)')}, got {value!r}")

    def check_scenes(self, prompts: Sequence[PromptRecord | str]) -> None:
        """``ValueError`` if the reward scores scenes and a prompt is a text the shapes grammar does not parse."""
        unparsed = [p for p in prompts if isinstance(p, str)] if self.reward.needs_scenes else []
        if unparsed:
            from cotimage.shapes import parse

            try:
                parse(unparsed[0])
            except ValueError as error:  # the grammar says why
                raise ValueError(
                    f"reward {self.reward.name!r} scores shapes scenes, and the shapes grammar does not parse the "
                    f"prompt {unparsed[0]!r}: {error}. Use a reward that reads any text, such as 'clip' or 'pref'"
                ) from None

    def start(self, prompts: Sequence[PromptRecord | str]) -> None:
        encoded = self.generator.encode_prompts([text_of(p) for p in prompts])  # raises over the limit
        self.check_scenes(prompts)
        self.prompts = list(prompts)
        ids = encoded.ids.numpy()  # padded to the batch's longest prompt, on the generator's side
        self.prompt_ids[:] = self.generator.pad_token_id
        if self.generator.padding_side == "left":
            self.prompt_ids[:, self.prompt_ids.shape[1] - ids.shape[1] :] = ids
        else:
            self.prompt_ids[:, : ids.shape[1]] = ids
        self.tokens[:] = NOT_DRAWN
        self.step_index = 0
        self.done = True  # until the start potential is in: if the reward raises, only reset() can go on
        self.potential[:] = self._potential() if self.shaping_interval else 0.0
        self.done = False

    def act(self, actions: np.ndarray) -> tuple[np.ndarray, bool, list[dict]]:
        """Append one token per row; returns rewards (n,), whether the images are complete, infos."""
        if self.done:
            raise RuntimeError("the episode is over (or was never started): call reset() before step()")
        self.tokens[:, self.step_index] = self.check_actions(actions)
        self.step_index += 1
        rewards_ = np.zeros(self.n, np.float32)
        infos: list[dict] = [{} for _ in range(self.n)]
        if self.step_index == self.length:
            self.done = True  # before scoring: if the reward raises, only reset() can go on
            images = self.generator.decode(self.tokens)
            scores, details = self.reward.score_with_details(images, self.prompts)
            # Potential-based shaping with the terminal potential 0: the shaped return is the
            # score minus the start potential, which the policy cannot change (Ng et al., 1999).
            rewards_ += scores - self.shaping_coef * self.potential
            for i, info in enumerate(infos):
                prompt = self.prompts[i]
                info.update(
                    image=images[i],
                    prompt=text_of(prompt),
                    category=getattr(prompt, "category", None),
                    score=float(scores[i]),
                    reward_details=details[i],
                )
        elif self.shaping_interval and self.step_index % self.shaping_interval == 0:
            potential = self._potential()
            rewards_ += self.shaping_coef * (potential - self.potential)
            self.potential = potential
        return rewards_, self.done, infos

    def check_actions(self, actions: Any) -> np.ndarray:
        array = np.asarray(actions)
        if not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"actions must be integer token ids, got dtype {array.dtype}")
        if array.shape != (self.n,):
            raise ValueError(f"actions must have shape ({self.n},), got {array.shape}")
        limit = self.generator.codebook_size
        if array.min() < 0 or array.max() >= limit:
            raise ValueError(f"actions must be token ids in [0, {limit}) (codebook_size={limit}), got {array.tolist()}")
        return array.astype(np.int64)

    # -- images --------------------------------------------------------------------------------
    def partial_images(self) -> np.ndarray:
        """Decode the tokens drawn so far, with undrawn slots shown as background."""
        return self.generator.decode(np.where(self.tokens == NOT_DRAWN, self.blank, self.tokens))

    def _potential(self) -> np.ndarray:
        return self.reward(self.partial_images(), self.prompts)
