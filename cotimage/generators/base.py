"""The generator contract every backend meets, and the sampling maths they share.

A generator turns prompts into image tokens and image tokens into pixels. Its ``policy``
is the torch module that RL trains. Every backend implements four methods on it:

- :meth:`Policy.start` (prefill the prompts, return the first next-token distribution),
- :meth:`Policy.advance` (feed one token per row, return the next distribution),
- :meth:`Policy.score_tokens` (teacher-forced log-probs of given tokens in one pass),
- :meth:`Policy.frozen_reference` (the frozen copy that KL penalties and DPO compare with),

and inherits :meth:`Policy.sample` and :meth:`Policy.log_prob` from them. Both the
sampler and the scorer turn raw logits into log-probabilities with the one function
:func:`process_logits`, so the log-probability of a sampled token is the same number
whichever path computes it (tests check it to 1e-4).

Which distribution the RL losses use: ``log_prob(prompts, tokens, sampling)`` is the
log-probability under the distribution described by ``sampling``. With
``cfg_weight == 1`` that is the plain conditional distribution; with guidance it is the
guided distribution the tokens were sampled from (exact on-policy ratios). T2I-R1 instead
samples with guidance and trains on the conditional branch: pass a ``SamplingConfig``
with ``cfg_weight=1`` to ``log_prob`` for that. Agents expose the choice as a config field.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from cotimage.checks import is_finite, is_int, require_seed

#: The largest classifier-free guidance weight: far beyond any used (Janus-Pro samples with 5),
#: far below what overflows float32 logits.
MAX_CFG_WEIGHT = 1e4


@dataclass(frozen=True)
class SamplingConfig:
    """How next-token logits become a distribution.

    Attributes:
        temperature: Divides the (guided) logits; > 0.
        top_k: Keep only the k most likely tokens; ``None`` keeps all.
        cfg_weight: Classifier-free guidance ``uncond + w * (cond - uncond)``; 1 means no
            guidance (and no unconditional rows are computed). Janus-Pro samples with 5.
    """

    temperature: float = 1.0
    top_k: int | None = None
    cfg_weight: float = 1.0

    def __post_init__(self) -> None:
        if not is_finite(self.temperature) or self.temperature <= 0:
            raise ValueError(f"temperature={self.temperature!r} must be a finite number > 0")
        if self.top_k is not None and (not is_int(self.top_k) or self.top_k < 1):
            raise ValueError(f"top_k={self.top_k!r} must be None or an int >= 1")
        # float32 bound: guidance multiplies logit differences, and a larger weight overflows them.
        if not is_finite(self.cfg_weight) or not 0 <= self.cfg_weight <= MAX_CFG_WEIGHT:
            raise ValueError(f"cfg_weight={self.cfg_weight!r} must be a number in [0, {MAX_CFG_WEIGHT:g}]")
        object.__setattr__(self, "top_k", None if self.top_k is None else int(self.top_k))

    @property
    def guided(self) -> bool:
        return self.cfg_weight != 1.0

    def replace(self, **changes: Any) -> SamplingConfig:
        return replace(self, **changes)


def process_logits(cond: torch.Tensor, uncond: torch.Tensor | None, sampling: SamplingConfig) -> torch.Tensor:
    """Raw logits (..., K) -> log-probabilities of the sampling distribution (..., K)."""
    cond = cond.float()  # guidance in float32: in bf16 its rounding error is scaled by the weight
    logits = cond if uncond is None else uncond.float() + sampling.cfg_weight * (cond - uncond.float())
    logits = logits / sampling.temperature
    if sampling.top_k is not None and sampling.top_k < logits.shape[-1]:
        kth = logits.topk(sampling.top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.log_softmax(logits, dim=-1)


@dataclass
class PromptBatch:
    """Encoded prompts: ``ids`` (B, P) int64, ``mask`` (B, P) bool (True = real token)."""

    ids: torch.Tensor
    mask: torch.Tensor
    texts: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.texts)

    def select(self, rows: torch.Tensor | list[int]) -> PromptBatch:
        """The rows ``rows`` of the batch, in that order (e.g. to repeat a prompt G times)."""
        rows = torch.as_tensor(rows, dtype=torch.long)
        return PromptBatch(self.ids[rows], self.mask[rows], tuple(self.texts[i] for i in rows.tolist()))


@dataclass
class DecodeState:
    """A batch being decoded token by token.

    Attributes:
        log_probs: (B, K) log-probabilities of the next token under ``sampling``.
        values: (B,) value-head estimate at this step, or ``None`` without a value head.
        step: Number of image tokens fed so far.
        sampling: The sampling configuration fixed at :meth:`Policy.start`.
        cache: Backend-specific key/value cache (rows: conditional, then unconditional).
    """

    log_probs: torch.Tensor
    values: torch.Tensor | None
    step: int
    sampling: SamplingConfig
    cache: Any


@dataclass
class TokenScores:
    """Teacher-forced scores of given image tokens: each (B, T)."""

    log_probs: torch.Tensor
    entropy: torch.Tensor
    values: torch.Tensor | None


@dataclass
class SampleOutput:
    """Sampled image tokens (B, T) int64 and their log-probabilities (B, T) float32."""

    tokens: torch.Tensor
    log_probs: torch.Tensor


class Policy(nn.Module, ABC):
    """An autoregressive image-token policy conditioned on prompts."""

    num_image_tokens: int
    codebook_size: int
    has_value_head: bool

    @property
    def device(self) -> torch.device:
        """Where the policy's weights live; tokens it returns are on this device."""
        return next(self.parameters()).device

    @abstractmethod
    def start(self, prompts: PromptBatch, sampling: SamplingConfig) -> DecodeState:
        """Prefill the prompts; the state's ``log_probs`` give the first image token."""

    @abstractmethod
    def advance(self, state: DecodeState, tokens: torch.Tensor) -> DecodeState:
        """Feed one image token per row (B,), update ``state`` in place and return it."""

    @abstractmethod
    def score_tokens(self, prompts: PromptBatch, tokens: torch.Tensor, sampling: SamplingConfig) -> TokenScores:
        """Log-probs, entropies and values of ``tokens`` (B, T) in one teacher-forced pass."""

    @abstractmethod
    def frozen_reference(self) -> Policy:
        """A frozen copy for KL penalties: no value head, no gradients, eval mode."""

    def weights_metadata(self) -> dict[str, str]:
        """What a weights file of this policy stores beside its tensors (e.g. its architecture), so it loads alone."""
        return {}

    @torch.no_grad()
    def next_log_probs(self, prompts: PromptBatch, tokens: torch.Tensor, sampling: SamplingConfig) -> torch.Tensor:
        """(B, V) log-probs of the token after the image prefix ``tokens`` (B, t), the prefix fed anew.

        What an agent's ``predict`` needs from an env observation; a policy may override it with
        one teacher-forced pass.
        """
        self.check_tokens(tokens)
        if tokens.shape[1] >= self.num_image_tokens:
            raise ValueError(f"tokens must hold fewer than {self.num_image_tokens} tokens to have a next one")
        state = self.start(prompts, sampling)
        for token in tokens.to(self.device).unbind(1):
            self.advance(state, token)
        return state.log_probs

    def log_prob(
        self, prompts: PromptBatch, tokens: torch.Tensor, sampling: SamplingConfig | None = None
    ) -> torch.Tensor:
        """(B, T) log-probabilities of ``tokens`` under ``sampling`` (default: unguided)."""
        return self.score_tokens(prompts, tokens, sampling or SamplingConfig()).log_probs

    def check_tokens(self, tokens: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``tokens`` are int64 codebook indices."""
        if not isinstance(tokens, torch.Tensor) or tokens.dtype != torch.long:
            raise ValueError(f"tokens must be an int64 tensor, got {getattr(tokens, 'dtype', type(tokens))}")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.codebook_size):
            raise ValueError(
                f"tokens must lie in [0, {self.codebook_size}), got [{int(tokens.min())}, {int(tokens.max())}]"
            )

    @torch.no_grad()
    def sample(
        self,
        prompts: PromptBatch,
        sampling: SamplingConfig | None = None,
        generator: torch.Generator | None = None,
    ) -> SampleOutput:
        """Sample ``num_image_tokens`` tokens per prompt with the KV cache.

        Args:
            prompts: Encoded prompts, one image each (repeat rows for several images).
            sampling: Temperature, top-k and guidance; default unguided at temperature 1.
            generator: Seeded ``torch.Generator`` for reproducible samples.
        """
        state = self.start(prompts, sampling or SamplingConfig())
        tokens, log_probs = [], []
        for _ in range(self.num_image_tokens):
            token = torch.multinomial(state.log_probs.exp(), 1, generator=generator).squeeze(1)
            tokens.append(token)
            log_probs.append(state.log_probs.gather(1, token[:, None]).squeeze(1))
            if len(tokens) < self.num_image_tokens:
                self.advance(state, token)
        return SampleOutput(torch.stack(tokens, 1), torch.stack(log_probs, 1))


class ValueHead(nn.Module):
    """A small MLP critic on the trunk's final hidden states, predicting 0 at first.

    It reads the features detached: the critic learns from the trunk without moving it, so
    its early errors cannot wreck the pretrained policy (with shared gradients, native PPO
    fell from 0.56 to 0.19 scene reward on one prompt in 20 updates).
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(width, width)
        self.out = nn.Linear(width, 1)
        fixed = torch.Generator().manual_seed(0)  # the same weights always give the same critic
        nn.init.kaiming_uniform_(self.hidden.weight, a=5**0.5, generator=fixed)
        nn.init.zeros_(self.hidden.bias)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.hidden(h.detach()))).squeeze(-1)


def zero_value_head(width: int) -> ValueHead:
    """A new :class:`ValueHead` for a trunk of this width."""
    return ValueHead(width)


class Generator(ABC):
    """A text-to-image generator: prompts <-> tokens <-> pixels, and the policy to train."""

    policy: Policy
    max_prompt_tokens: int
    #: The id that pads ``encode_prompts`` ids (where its mask is False).
    pad_token_id: int
    #: The side ``encode_prompts`` pads on; the env pads its prompt observations the same way.
    padding_side: str = "right"
    #: How this generator samples unless told otherwise (Janus-Pro: guidance weight 5).
    default_sampling: SamplingConfig = SamplingConfig()

    @property
    def num_image_tokens(self) -> int:
        return self.policy.num_image_tokens

    @property
    def device(self) -> torch.device:
        """Where the policy runs (``generators.load(name, device=...)`` chooses it)."""
        return self.policy.device

    @property
    def codebook_size(self) -> int:
        return self.policy.codebook_size

    @property
    @abstractmethod
    def image_size(self) -> int:
        """Side of decoded images in pixels."""

    @abstractmethod
    def encode_prompts(self, prompts: list[str]) -> PromptBatch:
        """Tokenize prompts; raises ``ValueError`` for an empty list or a prompt over the limit."""

    @abstractmethod
    def encode_images(self, images: np.ndarray) -> torch.Tensor:
        """uint8 images (B, H, W, 3) -> image tokens (B, num_image_tokens)."""

    @abstractmethod
    def decode(self, tokens: torch.Tensor | np.ndarray) -> np.ndarray:
        """Image tokens (B, num_image_tokens) -> uint8 images (B, H, W, 3)."""

    def generate(
        self, prompts: list[str], sampling: SamplingConfig | None = None, seed: int | None = None
    ) -> np.ndarray:
        """Prompts -> uint8 images, one per prompt, seeded (``None``: torch's global RNG)."""
        if sampling is not None and not isinstance(sampling, SamplingConfig):
            raise ValueError(f"sampling={sampling!r} must be None (the generator's own) or a SamplingConfig")
        generator = torch.Generator(self.device).manual_seed(require_seed("seed", seed)) if seed is not None else None
        prompts = self.encode_prompts(prompts)
        return self.decode(self.policy.sample(prompts, sampling or self.default_sampling, generator).tokens)


def check_prompts(prompts: list[str]) -> None:
    """Raise ``ValueError`` unless ``prompts`` is a non-empty list of strings."""
    if isinstance(prompts, str) or not isinstance(prompts, (list, tuple)) or len(prompts) == 0:
        raise ValueError(f"prompts must be a non-empty list of strings, got {type(prompts).__name__} {prompts!r:.80}")
    for text in prompts:
        if not isinstance(text, str):
            raise ValueError(f"prompts must hold strings, got {type(text).__name__}")
