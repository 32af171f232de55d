"""The shapes base generator: a small decoder-only transformer over [prompt words, image tokens].

Sequence layout (fixed positions, so rows of a batch stay aligned)::

    [BOS, w_1 .. w_n, PAD ..]   [BOI]   [t_0 .. t_62]
     \\___ P prompt slots ___/    P      P+1 .. P+63

The hidden state at position ``P + i`` predicts image token ``t_i``. Padding is masked
out of attention; BOS is always present, so the unconditional prompt used for
classifier-free guidance is ``[BOS, PAD ..]`` (the model is trained with prompt dropout).
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from cotimage.checks import checked_path, require_bool, require_count, writable_file
from cotimage.generators.base import (
    DecodeState,
    Generator,
    Policy,
    PromptBatch,
    SamplingConfig,
    TokenScores,
    check_prompts,
    process_logits,
    zero_value_head,
)
from cotimage.shapes.grammar import VOCABULARY, words
from cotimage.shapes.vq import PatchVQ

ASSET = Path(__file__).resolve().parents[1] / "assets" / "shapes_generator.safetensors"
SPECIALS = ("<pad>", "<bos>", "<unk>")
PAD, BOS, UNK = range(3)


class WordTokenizer:
    """Closed-vocabulary word tokenizer: the grammar's words; anything else is ``<unk>``."""

    def __init__(self, max_words: int = 40) -> None:
        max_words = require_count("max_words", max_words)
        self.vocab = [*SPECIALS, *VOCABULARY]
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.max_words = max_words

    @property
    def max_tokens(self) -> int:
        return self.max_words + 1  # BOS

    def __call__(self, prompts: list[str]) -> PromptBatch:
        check_prompts(prompts)
        ids = torch.full((len(prompts), self.max_tokens), PAD, dtype=torch.long)
        ids[:, 0] = BOS
        for row, text in enumerate(prompts):
            tokens = words(text)
            if len(tokens) > self.max_words:
                raise ValueError(
                    f"prompt has {len(tokens)} words, over the limit max_prompt_words={self.max_words}: {text!r}"
                )
            ids[row, 1 : 1 + len(tokens)] = torch.tensor([self.index.get(w, UNK) for w in tokens], dtype=torch.long)
        return PromptBatch(ids, ids != PAD, tuple(prompts))


@dataclass(frozen=True)
class ShapesConfig:
    """Architecture of the shapes policy (stored with its weights)."""

    text_vocab: int = len(SPECIALS) + len(VOCABULARY)
    prompt_tokens: int = 41
    codebook_size: int = 256
    image_tokens: int = 64
    d_model: int = 192
    layers: int = 4
    heads: int = 4
    ff: int = 768


class Block(nn.Module):
    """Pre-norm transformer block whose attention can read and write a KV cache."""

    def __init__(self, cfg: ShapesConfig) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.ff = nn.Sequential(nn.Linear(cfg.d_model, cfg.ff), nn.GELU(), nn.Linear(cfg.ff, cfg.d_model))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, cache: tuple | None = None, start: int = 0) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if cache is not None:  # write this chunk's keys/values, attend to everything so far
            keys, values = cache
            keys[:, :, start : start + t], values[:, :, start : start + t] = k, v
            k, v = keys[:, :, : start + t], values[:, :, : start + t]
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.proj(attn.transpose(1, 2).reshape(b, t, d))
        return x + self.ff(self.ln2(x))


class ShapesPolicy(Policy):
    """The shapes generator's transformer, with an optional value head on the shared trunk."""

    def __init__(self, cfg: ShapesConfig = ShapesConfig(), value_head: bool = False) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_image_tokens, self.codebook_size = cfg.image_tokens, cfg.codebook_size
        self.text_embed = nn.Embedding(cfg.text_vocab, cfg.d_model)
        self.image_embed = nn.Embedding(cfg.codebook_size, cfg.d_model)
        self.boi = nn.Parameter(torch.zeros(cfg.d_model))
        self.pos_embed = nn.Parameter(torch.zeros(cfg.prompt_tokens + cfg.image_tokens, cfg.d_model))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.codebook_size)
        self.value_head = zero_value_head(cfg.d_model) if value_head else None
        nn.init.normal_(self.pos_embed, std=0.02)

    @property
    def has_value_head(self) -> bool:
        return self.value_head is not None

    def add_value_head(self) -> None:
        if self.value_head is None:
            self.value_head = zero_value_head(self.cfg.d_model).to(self.boi.device)

    # -- building blocks -------------------------------------------------------------------
    def _rows(self, prompts: PromptBatch, guided: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt ids and key mask, with unconditional rows appended when guided."""
        ids, mask = prompts.ids.to(self.boi.device), prompts.mask.to(self.boi.device)
        if ids.shape[1] != self.cfg.prompt_tokens:
            raise ValueError(f"prompts must be encoded to {self.cfg.prompt_tokens} tokens, got {ids.shape[1]}")
        if guided:
            empty = torch.full_like(ids, PAD)
            empty[:, 0] = BOS
            ids, mask = torch.cat([ids, empty]), torch.cat([mask, empty != PAD])
        return ids, mask

    def _prefill(self, prompts: PromptBatch, guided: bool, extra: int) -> tuple[torch.Tensor, list, torch.Tensor]:
        """Run ``[prompt, BOI]`` through the trunk: the first part of every pass.

        Two savings that change no output beyond float rounding. Prompt slots that are
        padding in every row are left out: attention masks them and nothing reads their
        outputs (prompts fill about a third of the slots). Rows with the same prompt (GRPO's
        groups, guidance's unconditional rows) share one computation of its keys and values.

        Returns:
            The trunk output at BOI (rows, d), a key/value cache per block whose first
            ``prefix`` of ``prefix + extra`` slots hold the prompt and BOI, and the key mask
            (rows, prefix + extra).
        """
        ids, mask = self._rows(prompts, guided)
        slots = mask.any(0).nonzero().squeeze(1)
        unique, inverse = torch.unique(torch.where(mask, ids, -1)[:, slots], dim=0, return_inverse=True)
        prefix, head_dim = len(slots) + 1, self.cfg.d_model // self.cfg.heads
        boi = (self.boi + self.pos_embed[self.cfg.prompt_tokens]).expand(len(unique), 1, -1)
        x = torch.cat([self.text_embed(unique.clamp(min=PAD)) + self.pos_embed[slots], boi], 1)
        unique_mask = torch.cat([unique >= 0, torch.ones_like(unique[:, :1], dtype=torch.bool)], 1)
        causal = torch.ones(prefix, prefix, dtype=torch.bool, device=ids.device).tril() & unique_mask[:, None, None, :]
        cache = []
        for block in self.blocks:
            shared = tuple(x.new_empty(len(unique), self.cfg.heads, prefix, head_dim) for _ in range(2))
            x = block(x, causal, shared, 0)
            kv = tuple(x.new_empty(len(ids), self.cfg.heads, prefix + extra, head_dim) for _ in range(2))
            for full, part in zip(kv, shared):
                full[:, :, :prefix] = part[inverse]
            cache.append(kv)
        key_mask = torch.cat([mask[:, slots], mask.new_ones(len(ids), 1 + extra)], 1)
        return x[inverse, -1], cache, key_mask

    def _outputs(self, h: torch.Tensor, rows: int, sampling: SamplingConfig):
        """Final hidden states -> (log-probs, values) for the first ``rows`` (conditional) rows."""
        h = self.ln_f(h)
        logits = self.head(h)
        uncond = logits[rows:] if sampling.guided else None
        values = self.value_head(h[:rows]) if self.value_head is not None else None
        return process_logits(logits[:rows], uncond, sampling), values

    # -- the Policy contract -----------------------------------------------------------------
    def start(self, prompts: PromptBatch, sampling: SamplingConfig) -> DecodeState:
        h, cache, key_mask = self._prefill(prompts, sampling.guided, self.cfg.image_tokens - 1)
        log_probs, values = self._outputs(h, len(prompts), sampling)
        prefix = key_mask.shape[1] - (self.cfg.image_tokens - 1)
        return DecodeState(log_probs, values, 0, sampling, {"kv": cache, "key_mask": key_mask, "prefix": prefix})

    def advance(self, state: DecodeState, tokens: torch.Tensor) -> DecodeState:
        self.check_tokens(tokens)
        if state.step + 1 >= self.cfg.image_tokens:
            raise ValueError(f"all {self.cfg.image_tokens - 1} tokens that condition a next token were fed already")
        rows = len(state.log_probs)
        if tokens.shape != (rows,):
            raise ValueError(f"tokens must have shape ({rows},), got {tuple(tokens.shape)}")
        slot = state.cache["prefix"] + state.step  # the token's cache slot (left-out prompt slots take none)
        tokens = tokens.to(self.boi.device)
        if state.sampling.guided:
            tokens = torch.cat([tokens, tokens])
        x = (self.image_embed(tokens) + self.pos_embed[self.cfg.prompt_tokens + 1 + state.step])[:, None]
        mask = state.cache["key_mask"][:, None, None, : slot + 1]
        for block, kv in zip(self.blocks, state.cache["kv"]):
            x = block(x, mask, kv, slot)
        state.log_probs, state.values = self._outputs(x[:, 0], rows, state.sampling)
        state.step += 1
        return state

    def hidden_states(self, prompts: PromptBatch, fed: torch.Tensor, guided: bool = False) -> torch.Tensor:
        """Trunk outputs (before ``ln_f``) at the positions after BOI, feeding ``fed`` (B, t) -> (rows, t + 1, d).

        With ``guided``, unconditional rows follow the conditional ones.
        """
        fed = fed.to(self.boi.device)
        fed = fed.repeat(2, 1) if guided else fed
        p, t = self.cfg.prompt_tokens, fed.shape[1]
        h, cache, key_mask = self._prefill(prompts, guided, t)
        prefix = key_mask.shape[1] - t
        x = self.image_embed(fed) + self.pos_embed[p + 1 : p + 1 + t]
        causal = torch.ones(t, prefix + t, dtype=torch.bool, device=x.device).tril(prefix)
        for block, kv in zip(self.blocks, cache):
            x = block(x, causal & key_mask[:, None, None, :], kv, prefix)
        return torch.cat([h[:, None], x], 1)

    def _teacher_forced(self, prompts: PromptBatch, fed: torch.Tensor, sampling: SamplingConfig):
        """Log-probs (B, t + 1, K) and values of the positions after BOI, feeding ``fed`` (B, t)."""
        return self._outputs(self.hidden_states(prompts, fed, sampling.guided), len(prompts), sampling)

    def score_tokens(self, prompts: PromptBatch, tokens: torch.Tensor, sampling: SamplingConfig) -> TokenScores:
        self.check_tokens(tokens)
        if tokens.ndim != 2 or tokens.shape[0] != len(prompts) or not 0 < tokens.shape[1] <= self.cfg.image_tokens:
            raise ValueError(
                f"tokens must have shape ({len(prompts)}, T) with 0 < T <= {self.cfg.image_tokens}, got {tuple(tokens.shape)}"
            )
        log_probs, values = self._teacher_forced(prompts, tokens[:, :-1], sampling)
        entropy = -(log_probs.exp() * log_probs.masked_fill(log_probs.isinf(), 0)).sum(-1)
        tokens = tokens.to(log_probs.device)
        return TokenScores(log_probs.gather(-1, tokens[..., None]).squeeze(-1), entropy, values)

    @torch.no_grad()
    def next_log_probs(self, prompts: PromptBatch, tokens: torch.Tensor, sampling: SamplingConfig) -> torch.Tensor:
        """One forward pass over the whole prefix (no cache): the recomputation baseline."""
        self.check_tokens(tokens)
        if tokens.ndim != 2 or tokens.shape[0] != len(prompts) or tokens.shape[1] >= self.cfg.image_tokens:
            raise ValueError(
                f"tokens must have shape ({len(prompts)}, t) with t < {self.cfg.image_tokens} to have a next one, "
                f"got {tuple(tokens.shape)}"
            )
        return self._teacher_forced(prompts, tokens, sampling)[0][:, -1]

    def frozen_reference(self) -> ShapesPolicy:
        reference = copy.deepcopy(self)
        reference.value_head = None
        return reference.requires_grad_(False).eval()

    # -- weights -----------------------------------------------------------------------------
    def weights_metadata(self) -> dict[str, str]:
        return {"config": json.dumps(asdict(self.cfg))}

    def save(self, path: str | Path, dtype: torch.dtype = torch.float16, overwrite: bool = False) -> None:
        """Write the weights (fp16 by default) and architecture to one safetensors file.

        Raises:
            ValueError: if a file is at ``path`` and ``overwrite`` is false, or ``path`` cannot be written.
        """
        path = writable_file(path, overwrite)
        tensors = {k: v.detach().to(dtype).contiguous() for k, v in self.state_dict().items()}
        save_file(tensors, str(path), metadata=self.weights_metadata())

    @classmethod
    def load(cls, path: str | Path = ASSET, value_head: bool = False) -> ShapesPolicy:
        """Load weights in float32; a fresh zero-initialised value head if asked and absent.

        ``path``: a file :meth:`save` wrote, or the ``policy.safetensors`` of a saved agent.

        Raises:
            FileNotFoundError: if there is no file at ``path``.
            ValueError: if the file holds no shapes policy (another model's weights, or none).
        """
        path = Path(path)
        if path.is_dir():
            hint = f"; a saved agent's policy is {path / 'policy.safetensors'}" if (path / "policy.safetensors").is_file() else ""
            raise FileNotFoundError(f"{path} is a directory, not a shapes policy file{hint}")
        if not path.is_file():
            made_by = "; scripts/train_generator.py makes the shipped one" if path == ASSET else ""
            raise FileNotFoundError(f"no shapes policy file at {path}{made_by}")
        try:
            with safe_open(str(path), "pt") as f:
                metadata = f.metadata() or {}
            # Agents saved before their policy files carried the architecture hold the default one.
            cfg = ShapesConfig(**json.loads(metadata["config"])) if "config" in metadata else ShapesConfig()
            state = {k: v.float() for k, v in load_file(str(path)).items()}
            policy = cls(cfg, value_head=any(k.startswith("value_head.") for k in state))
            policy.load_state_dict(state)
        except (KeyError, TypeError, RuntimeError, SafetensorError) as error:
            raise ValueError(
                f"{path} is not a shapes policy file (one ShapesPolicy.save or a saved agent's policy.safetensors "
                f"writes): {type(error).__name__}: {error}"
            ) from error
        if value_head:
            policy.add_value_head()
        else:
            policy.value_head = None
        return policy


class ShapesGenerator(Generator):
    """The embedded default generator: :class:`ShapesPolicy` + :class:`WordTokenizer` + :class:`PatchVQ`.

    Args:
        weights: Policy weights; by default the shipped ones.
        value_head: Add a value head on the trunk (for PPO).
        policy: Use this policy instead of loading weights (e.g. an untrained one in tests);
            then ``weights`` and ``value_head`` must be left at their defaults.
        device: Where the policy runs (``"cpu"``, ``"cuda"``, ...); the VQ decodes on the CPU.
            ``None``: a given policy stays where it is, loaded weights go to the CPU. A given
            policy is moved in place (``nn.Module.to``), so it is only moved when asked.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        value_head: bool = False,
        policy: ShapesPolicy | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        require_bool("value_head", value_head)
        if policy is not None and not isinstance(policy, ShapesPolicy):
            raise ValueError(f"policy={policy!r:.80} must be a ShapesPolicy (or None to load weights)")
        if device is not None and not isinstance(device, (str, torch.device)):  # nn.Module.to would take a dtype
            raise ValueError(f"device={device!r} must be None, a str such as 'cpu' or 'cuda', or a torch.device")
        if isinstance(device, str):
            try:
                torch.device(device)
            except RuntimeError as error:
                raise ValueError(f"device={device!r} is no torch device: {error}") from None
        weights = checked_path("weights", weights) if weights is not None else None
        if policy is not None and (weights is not None or value_head):
            raise ValueError("pass either policy or weights / value_head: a given policy is used as it is")
        #: The weights file the policy started from (``None`` for a given policy): a saved agent
        #: names the generator only when it is the shipped one, which ``load`` can rebuild.
        self.weights_file = None if policy is not None else Path(weights or ASSET).resolve()
        if policy is None:
            policy = ShapesPolicy.load(weights or ASSET, value_head=value_head).to(device or "cpu")
        self.policy = policy if device is None else policy.to(device)
        self.tokenizer = WordTokenizer(self.policy.cfg.prompt_tokens - 1)
        self.vq = PatchVQ.load()
        if self.vq.codebook_size != self.policy.codebook_size or self.vq.num_tokens != self.policy.num_image_tokens:
            raise ValueError("the policy's codebook size or token count does not match the tokenizer's")
        self.max_prompt_tokens = self.tokenizer.max_words
        self.pad_token_id = PAD

    @property
    def image_size(self) -> int:
        return self.vq.image_size

    def encode_prompts(self, prompts: list[str]) -> PromptBatch:
        return self.tokenizer(prompts)

    def encode_images(self, images: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(self.vq.encode(np.asarray(images)))

    def decode(self, tokens: torch.Tensor | np.ndarray) -> np.ndarray:
        return self.vq.decode(np.asarray(torch.as_tensor(tokens).cpu()))
