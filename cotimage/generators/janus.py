"""Janus-Pro as a cotimage generator: the transformers ``JanusForConditionalGeneration`` behind the Policy contract.

Image generation in Janus (mirrored from ``JanusForConditionalGeneration.generate(..., generation_mode="image")``
and ``JanusProcessor(..., generation_mode="image")`` in transformers 5.x):

- Prompt: the chat template with the generation prompt, then the image start token::

      <bos><|User|>: {prompt}\\n\\n<|Assistant|>:<begin_of_image>

  tokenized with left padding.
- Unconditional prompt (classifier-free guidance): the same ids with every token that is neither BOS nor BOI
  replaced by the generation pad id, and the same attention mask (so the pads that replace the text are attended).
- Each step: the language model's last hidden state goes through ``model.model.generation_head`` (not ``lm_head``)
  to give logits over the VQ codebook; the chosen token is embedded with
  ``prepare_embeddings_for_image_generation`` (``generation_embeddings`` + ``generation_aligner``) and fed back.
- ``decode_image_tokens`` turns ``num_patches ** 2`` tokens into (B, H, W, 3) pixels in about [-1, 1].

One deliberate difference: ``generate`` passes no ``position_ids``, so a left-padded row gets positions shifted by
its padding. Here positions are ``cumsum(mask) - 1``, so a prompt gets the same distribution whether it is batched
with longer prompts or not (identical to ``generate`` for unpadded batches).

The weights are never downloaded here: pass a local directory holding ``deepseek-community/Janus-Pro-1B`` (or
``-7B``) in transformers format, or set ``COTIMAGE_JANUS_PATH``. :func:`build_random` builds a random model and
processor offline: tiny for tests, or with Janus-Pro-1B's shapes (:data:`JANUS_PRO_1B_SHAPES`) for throughput.
"""

from __future__ import annotations

import copy
import inspect
import os
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cotimage.checks import require_bool, require_count
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

DEFAULT_CFG_WEIGHT = 5.0
"""Guidance weight Janus-Pro samples with (``generate`` defaults to 5; T2I-R1 uses 5)."""

DEFAULT_MAX_PROMPT_TOKENS = 256
"""Longest encoded prompt accepted, counted in tokens including BOS, the chat template and the image start token."""

PATH_ENV = "COTIMAGE_JANUS_PATH"
HUB_IDS = ("deepseek-community/Janus-Pro-1B", "deepseek-community/Janus-Pro-7B")


def _cache_keyword(language_model: nn.Module) -> str:
    """transformers renamed ``past_key_values`` to ``cache`` in 5.x; use whichever the model takes."""
    parameters = inspect.signature(language_model.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def _new_cache(config: Any) -> Any:
    from transformers import DynamicCache

    try:
        return DynamicCache(config=config)
    except TypeError:  # older transformers
        return DynamicCache()


def _positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that ignore left padding: ``cumsum(mask) - 1`` (0 on padding)."""
    return (mask.long().cumsum(-1) - 1).clamp_min(0)


DECODINGS = ("auto", "dynamic", "static", "cuda-graph")
"""The ways :class:`JanusPolicy` can decode (its ``decoding`` argument)."""

#: Attention implementations that take the additive 4D masks the static decoder builds.
_MASKABLE_ATTENTION = ("sdpa", "eager")


@cache  # a property of the installed transformers
def _static_cache_counts_on_device() -> bool:
    """Whether this transformers' ``StaticCache`` keeps its write position as a device tensor (5.x).

    Older ones take the position from the caller or read it back to the host, which a CUDA
    graph cannot capture.
    """
    try:
        from transformers.cache_utils import StaticLayer

        return isinstance(getattr(StaticLayer(max_cache_len=1), "cumulative_length", None), torch.Tensor)
    except (ImportError, TypeError):
        return False


def _static_decoding_needs(model: nn.Module) -> str | None:
    """What ``model`` or the installed transformers lacks for static (and CUDA-graph) decoding; ``None`` if nothing."""
    attention = model.config.text_config._attn_implementation
    if attention not in _MASKABLE_ATTENTION:
        return f"an attention implementation that takes 4D masks {_MASKABLE_ATTENTION}, the model uses {attention!r}"
    if not _static_cache_counts_on_device():
        import transformers

        return (
            "transformers 5's StaticCache (a write counter on the device); "
            f"transformers {transformers.__version__} is installed"
        )
    return None


def check_decoding(decoding: str, model: nn.Module | None = None) -> str:
    """``decoding`` if it is one of :data:`DECODINGS` that ``model`` (when given) and transformers can run,
    else ``ValueError``."""
    if decoding not in DECODINGS:
        raise ValueError(f"decoding={decoding!r} must be one of {DECODINGS}")
    needs = _static_decoding_needs(model) if model is not None and decoding in ("static", "cuda-graph") else None
    if needs is not None:
        raise ValueError(f"decoding={decoding!r} needs {needs}; pass decoding='dynamic'")
    return decoding


class _DynamicDecoder:
    """Decoding with transformers' ``DynamicCache``: the cache and the mask grow by one position per step."""

    def __init__(self, policy: JanusPolicy, mask: torch.Tensor) -> None:
        self.policy, self.mask = policy, mask
        self.kv = _new_cache(policy.model.model.language_model.config)
        self.next_position = mask.sum(-1, keepdim=True)

    def prefill(self, embeds: torch.Tensor) -> torch.Tensor:
        """Runs the prompts; returns the last position's hidden state (rows, hidden)."""
        return self.policy._run(embeds, self.mask, _positions(self.mask), self.kv)[:, -1]

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Feeds one image token per row; returns its hidden state (rows, hidden)."""
        self.mask = torch.cat([self.mask, self.mask.new_ones(len(tokens), 1)], 1)
        embeds = self.policy._embed_image_tokens(tokens[:, None])
        h = self.policy._run(embeds, self.mask, self.next_position, self.kv)
        self.next_position = self.next_position + 1
        return h[:, -1]


class _StaticDecoder:
    """Decoding over a ``StaticCache`` preallocated for the prompt and the whole image, as a CUDA graph if asked.

    transformers' ``StaticCache`` writes each step's keys and values in place, at a counter it keeps on the
    device, so a decode step has fixed shapes and addresses. That lets one step be captured as a CUDA graph and
    replayed: one launch instead of the hundreds of small kernels a step of a 24-layer model is, which bound
    Janus-Pro-1B's sampling on an H100 (19.6 ms per step, for under 1 ms of weight reads). The first
    :attr:`WARMUP_STEPS` steps run eagerly on a side stream (as PyTorch asks before a capture); the next is
    captured. Masks are additive 4D float masks over the whole cache (the prompts' padding and the slots not
    yet written at the dtype's minimum), so transformers passes them through without looking at them.
    """

    WARMUP_STEPS = 2

    def __init__(self, policy: JanusPolicy, mask: torch.Tensor, dtype: torch.dtype, graphs: bool) -> None:
        from transformers import StaticCache

        self.policy = policy
        rows, self.prompt_length = mask.shape
        length = self.prompt_length + policy.num_image_tokens - 1  # the last token is never fed
        self.kv = StaticCache(config=policy.model.model.language_model.config, max_cache_len=length)
        self.minimum = torch.finfo(dtype).min
        self.prompt_mask = mask.bool()
        self.step_mask = torch.full((rows, 1, 1, length), self.minimum, dtype=dtype, device=mask.device)
        self.step_mask[..., : self.prompt_length].masked_fill_(self.prompt_mask[:, None, None, :], 0.0)
        self.positions = mask.sum(-1, keepdim=True)
        self.tokens = torch.zeros(rows, dtype=torch.long, device=mask.device)
        self.graphs = graphs and mask.device.type == "cuda"
        self.graph: torch.cuda.CUDAGraph | None = None
        self.output: torch.Tensor | None = None
        self.steps = 0

    def prefill(self, embeds: torch.Tensor) -> torch.Tensor:
        """Runs the prompts; returns the last position's hidden state (rows, hidden)."""
        p, device = self.prompt_length, embeds.device
        causal = torch.ones(p, p, dtype=torch.bool, device=device).tril()
        # A padding position attends to itself only: its output is never read, but it must stay finite.
        allowed = (causal & self.prompt_mask[:, None, None, :]) | torch.eye(p, dtype=torch.bool, device=device)
        mask = torch.full((len(embeds), 1, p, self.step_mask.shape[-1]), self.minimum, dtype=embeds.dtype, device=device)
        mask[..., :p].masked_fill_(allowed, 0.0)
        return self.policy._run(embeds, mask, _positions(self.prompt_mask), self.kv)[:, -1]

    def _forward(self) -> torch.Tensor:
        embeds = self.policy._embed_image_tokens(self.tokens[:, None])
        return self.policy._run(embeds, self.step_mask, self.positions, self.kv)[:, -1]

    def _graph_step(self) -> torch.Tensor:
        if self.steps < self.WARMUP_STEPS:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                h = self._forward()
            torch.cuda.current_stream().wait_stream(side)
            h.record_stream(torch.cuda.current_stream())  # read there next; keep the side stream off its memory
            return h
        if self.graph is None:
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.output = self._forward()
        self.graph.replay()
        return self.output

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Feeds one image token per row; returns its hidden state (rows, hidden), valid until the next step."""
        self.tokens.copy_(tokens)
        self.step_mask[..., self.prompt_length + self.steps] = 0.0
        if not self.graphs:
            h = self._forward()
        else:  # streams and captures bind to the current device: make it the model's
            with torch.cuda.device(self.tokens.device):
                h = self._graph_step()
        self.positions.add_(1)
        self.steps += 1
        return h


class JanusPolicy(Policy):
    """A ``JanusForConditionalGeneration`` as an image-token policy.

    Args:
        model: The Janus model (its language model, generation embeddings/aligner/head are used; the VQ decodes).
        bos_token_id, boi_token_id, pad_token_id: Ids used to build the unconditional rows for guidance: every
            prompt token that is neither BOS nor BOI becomes ``pad_token_id`` (as ``generate`` does).
        value_head: Add a zero-initialised ``Linear(hidden, 1)`` on the language model's final hidden state.
        decoding: How :meth:`start` / :meth:`advance` run the language model, one of :data:`DECODINGS`:
            ``dynamic`` grows transformers' ``DynamicCache`` by one position per step; ``static`` preallocates a
            ``StaticCache`` for the whole image (transformers 5); ``cuda-graph`` is ``static`` with each step
            replayed as one captured CUDA graph (on the CPU it runs ``static`` eagerly); ``auto`` (default) is
            ``cuda-graph`` on a GPU and ``dynamic`` elsewhere. With gradients enabled every mode decodes
            with the dynamic cache (the static one is written in place). All give the same distributions, up
            to floating-point rounding.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        bos_token_id: int,
        boi_token_id: int,
        pad_token_id: int,
        value_head: bool = False,
        decoding: str = "auto",
    ) -> None:
        super().__init__()
        self.model = model
        self.bos_token_id, self.boi_token_id = int(bos_token_id), int(boi_token_id)
        self.pad_token_id = int(pad_token_id)
        vqmodel = model.model.vqmodel
        rows, cols = vqmodel.quantize.quant_state_dims
        self.num_image_tokens = int(rows * cols)  # what decode_image_tokens accepts: num_patches ** 2
        self.codebook_size = int(model.config.vq_config.num_embeddings)
        declared = getattr(model.config.vision_config, "num_image_tokens", self.num_image_tokens)
        if declared != self.num_image_tokens:
            raise ValueError(
                f"vision_config.num_image_tokens={declared} (the length generate() samples) differs from "
                f"vq_config.num_patches ** 2={self.num_image_tokens} (the length the VQ decodes)"
            )
        self._cache_kw = _cache_keyword(model.model.language_model)
        hidden = model.config.text_config.hidden_size
        self._hidden = hidden
        self.value_head = zero_value_head(hidden) if value_head else None
        self.decoding = check_decoding(decoding, model)

    @property
    def has_value_head(self) -> bool:
        return self.value_head is not None

    def add_value_head(self) -> None:
        if self.value_head is None:
            self.value_head = zero_value_head(self._hidden).to(self.device)

    # -- building blocks -------------------------------------------------------------------
    def _rows(self, prompts: PromptBatch, guided: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt ids and attention mask (long), with the unconditional rows appended when guided."""
        ids, mask = prompts.ids.to(self.device, torch.long), prompts.mask.to(self.device, torch.long)
        if ids.ndim != 2 or ids.shape != mask.shape or len(ids) != len(prompts) or ids.shape[1] == 0:
            raise ValueError(
                f"prompts need ids and mask of one shape (B, P), got {tuple(ids.shape)}, {tuple(mask.shape)}"
            )
        if guided:
            uncond = ids.masked_fill((ids != self.bos_token_id) & (ids != self.boi_token_id), self.pad_token_id)
            ids, mask = torch.cat([ids, uncond]), torch.cat([mask, mask])
        return ids, mask

    def _run(self, embeds: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any) -> torch.Tensor:
        """The language model over ``embeds``; ``mask`` covers cached plus new positions. Returns hidden states."""
        language_model = self.model.model.language_model
        if cache is None:
            out = language_model(inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=False)
            return out.last_hidden_state
        # transformers before 5.2x drops the KV cache of a checkpointed layer in training mode even without
        # gradients (seen in 5.17): the cache would never fill. Decoding never needs checkpointing, so it runs
        # the layers in eval mode (which changes nothing else in a Llama).
        checkpointed = language_model.training and getattr(language_model.layers[0], "gradient_checkpointing", False)
        if checkpointed:
            language_model.eval()
        try:
            out = language_model(
                inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=True, **{self._cache_kw: cache}
            )
        finally:
            if checkpointed:
                language_model.train()
        return out.last_hidden_state

    def _outputs(self, h: torch.Tensor, rows: int, sampling: SamplingConfig):
        """Final hidden states -> (log-probs, values) for the first ``rows`` (conditional) rows."""
        logits = self.model.model.generation_head(h)
        uncond = logits[rows:] if sampling.guided else None
        values = None
        if self.value_head is not None:
            values = self.value_head(h[:rows].to(self.value_head.out.weight.dtype)).float()
        return process_logits(logits[:rows], uncond, sampling), values

    def _embed_image_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model.prepare_embeddings_for_image_generation(tokens)

    # -- the Policy contract -----------------------------------------------------------------
    def start(self, prompts: PromptBatch, sampling: SamplingConfig) -> DecodeState:
        ids, mask = self._rows(prompts, sampling.guided)
        embeds = self.model.get_input_embeddings()(ids)
        decoding = self._resolve_decoding()
        if decoding == "dynamic":
            decoder = _DynamicDecoder(self, mask)
        else:
            decoder = _StaticDecoder(self, mask, embeds.dtype, graphs=decoding == "cuda-graph")
        log_probs, values = self._outputs(decoder.prefill(embeds), len(prompts), sampling)
        return DecodeState(log_probs, values, 0, sampling, decoder)

    def advance(self, state: DecodeState, tokens: torch.Tensor) -> DecodeState:
        self.check_tokens(tokens)
        if state.step + 1 >= self.num_image_tokens:
            raise ValueError(f"all {self.num_image_tokens - 1} tokens that condition a next token were fed already")
        rows = len(state.log_probs)
        if tokens.shape != (rows,):
            raise ValueError(f"tokens must have shape ({rows},), got {tuple(tokens.shape)}")
        tokens = tokens.to(self.device)
        if state.sampling.guided:
            tokens = torch.cat([tokens, tokens])
        state.log_probs, state.values = self._outputs(state.cache.step(tokens), rows, state.sampling)
        state.step += 1
        return state

    def _resolve_decoding(self) -> str:
        """The decoding :meth:`start` uses now.

        ``auto`` picks CUDA graphs on a GPU where the model and transformers allow them, the dynamic cache
        elsewhere. Under autograd every mode decodes with the dynamic cache: the static cache and its masks
        are written in place, which backward cannot go through.
        """
        if torch.is_grad_enabled():
            return "dynamic"
        if self.decoding != "auto":
            return self.decoding
        if self.device.type == "cuda" and _static_decoding_needs(self.model) is None:
            return "cuda-graph"
        return "dynamic"

    def score_tokens(self, prompts: PromptBatch, tokens: torch.Tensor, sampling: SamplingConfig) -> TokenScores:
        self.check_tokens(tokens)
        if tokens.ndim != 2 or tokens.shape[0] != len(prompts) or not 0 < tokens.shape[1] <= self.num_image_tokens:
            raise ValueError(
                f"tokens must have shape ({len(prompts)}, T) with 0 < T <= {self.num_image_tokens}, "
                f"got {tuple(tokens.shape)}"
            )
        ids, mask = self._rows(prompts, sampling.guided)
        tokens = tokens.to(self.device)
        fed = tokens[:, :-1].repeat(2, 1) if sampling.guided else tokens[:, :-1]
        p, t = ids.shape[1], tokens.shape[1]
        embeds = torch.cat([self.model.get_input_embeddings()(ids), self._embed_image_tokens(fed)], 1)
        mask = torch.cat([mask, mask.new_ones(len(ids), t - 1)], 1)
        h = self._run(embeds, mask, _positions(mask), None)
        log_probs, values = self._outputs(h[:, p - 1 :], len(prompts), sampling)
        entropy = -(log_probs.exp() * log_probs.masked_fill(log_probs.isinf(), 0)).sum(-1)
        return TokenScores(log_probs.gather(-1, tokens[..., None]).squeeze(-1), entropy, values)

    def frozen_reference(self) -> JanusPolicy:
        """A frozen eval-mode deep copy without value head.

        A deep copy doubles the weights in memory. For Janus-Pro-7B the memory-lean choice is a LoRA-style
        shared reference (train adapters, score the reference with adapters disabled); a deep copy is what is
        implemented here.
        """
        value_head, self.value_head = self.value_head, None
        try:
            reference = copy.deepcopy(self)
        finally:
            self.value_head = value_head
        return reference.requires_grad_(False).eval()


def _special_ids(model: nn.Module, tokenizer: Any) -> dict[str, int]:
    """BOS, BOI and the CFG pad id, as ``generate`` takes them (generation config first, tokenizer after)."""
    gen = getattr(model, "generation_config", None)
    kwargs = (getattr(gen, "generation_kwargs", None) or {}) if gen is not None else {}
    bos = getattr(gen, "bos_token_id", None)
    boi = kwargs.get("boi_token_id", getattr(gen, "boi_token_id", None))
    pad = getattr(gen, "pad_token_id", None)
    bos = tokenizer.bos_token_id if bos is None else bos
    boi = tokenizer.convert_tokens_to_ids(tokenizer.boi_token) if boi is None else boi
    pad = tokenizer.pad_token_id if pad is None else pad
    ids = {"bos_token_id": bos, "boi_token_id": boi, "pad_token_id": pad}
    missing = [k for k, v in ids.items() if v is None]
    if missing:
        raise ValueError(f"cannot find {missing} in the model's generation config or the tokenizer")
    return {k: int(v[0] if isinstance(v, (list, tuple)) else v) for k, v in ids.items()}


def _enable_checkpointing(model: nn.Module) -> None:
    """transformers' activation checkpointing, under its newer name where it has one (deprecated in 5.2x)."""
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


JANUS_HELP = (
    f"Janus weights are never downloaded here: on a machine with network, download "
    f"{HUB_IDS[0]} (or {HUB_IDS[1]}) in transformers format, e.g. "
    f"`huggingface-cli download {HUB_IDS[0]} --local-dir /models/janus-pro-1b`, then pass "
    f"JanusGenerator(path='/models/janus-pro-1b') or set {PATH_ENV}=/models/janus-pro-1b."
)


def _missing_weights(path: str | Path | None) -> FileNotFoundError:
    where = f"no Janus model directory at {str(path)!r}" if path else f"no Janus path given and ${PATH_ENV} is not set"
    return FileNotFoundError(f"{where}. {JANUS_HELP}")


class JanusGenerator(Generator):
    """Janus-Pro behind the Generator contract: text prompts <-> VQ image tokens <-> pixels.

    Args:
        path: Local directory with a transformers-format Janus-Pro checkpoint (model and processor). ``None`` reads
            ``$COTIMAGE_JANUS_PATH``; nothing is downloaded. Ignored for whatever ``model``/``processor`` provide.
        model: A ready ``JanusForConditionalGeneration`` (e.g. :func:`build_random` in tests).
        processor: A ready ``JanusProcessor``.
        device: Where the model runs.
        dtype: Weights dtype when loading (e.g. ``torch.bfloat16``); ``None`` keeps the checkpoint's default.
        cfg_weight: Guidance weight of :attr:`default_sampling` used by :meth:`generate` (default
            :data:`DEFAULT_CFG_WEIGHT` = 5, Janus-Pro's). ``policy.sample`` / ``log_prob`` take an explicit
            ``SamplingConfig`` and default to unguided like every backend.
        value_head: Add a zero-initialised value head to the policy (for PPO).
        max_prompt_tokens: Longest encoded prompt (tokens, template and BOI included); longer raises ``ValueError``.
        gradient_checkpointing: Recompute each language-model layer in the backward pass instead of keeping its
            activations (transformers' gradient checkpointing), for training in less memory at about one more
            forward pass of compute. The teacher-forced pass of an update is where the memory goes: at
            Janus-Pro-1B's shapes, 16 images with guidance peaked at 56.5 GiB without it.
        decoding: How sampling runs the language model, one of :data:`DECODINGS` (see :class:`JanusPolicy`):
            ``auto`` (default) replays each decode step as a CUDA graph on a GPU and grows a dynamic cache on the
            CPU.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        model: nn.Module | None = None,
        processor: Any | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        cfg_weight: float = DEFAULT_CFG_WEIGHT,
        value_head: bool = False,
        max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS,
        gradient_checkpointing: bool = False,
        decoding: str = "auto",
    ) -> None:
        # Every argument is checked before the weights load (minutes for Janus-Pro-7B).
        max_prompt_tokens = require_count("max_prompt_tokens", max_prompt_tokens, least=2)
        require_bool("gradient_checkpointing", gradient_checkpointing)
        check_decoding(decoding)  # the name; whether this model can run it, once loaded
        default_sampling = SamplingConfig(cfg_weight=cfg_weight)
        if model is None or processor is None:
            path = path if path is not None else os.environ.get(PATH_ENV) or None
            folder = Path(path) if path is not None else None
            if folder is None or not folder.is_dir() or (model is None and not (folder / "config.json").is_file()):
                raise _missing_weights(path)
            from transformers import JanusForConditionalGeneration, JanusProcessor

            if processor is None:  # first: it loads in a moment, and a directory may hold the weights alone
                try:
                    processor = JanusProcessor.from_pretrained(str(path), local_files_only=True)
                except OSError as error:
                    raise FileNotFoundError(
                        f"{path} holds no Janus processor (the tokenizer and image processor files that "
                        f"JanusProcessor.save_pretrained writes). {JANUS_HELP} (transformers said: {error})"
                    ) from error
            if model is None:
                kwargs = {"dtype": dtype} if dtype is not None else {}
                model = JanusForConditionalGeneration.from_pretrained(str(path), local_files_only=True, **kwargs)
        model = model.to(device).eval()
        if gradient_checkpointing:  # only active in training mode with gradients, so sampling is unchanged
            _enable_checkpointing(model)
        self.model, self.processor = model, processor
        special = _special_ids(model, processor.tokenizer)
        self.policy = JanusPolicy(model, value_head=value_head, decoding=decoding, **special).to(device)
        self.default_sampling = default_sampling
        self.max_prompt_tokens = max_prompt_tokens
        self.pad_token_id = int(processor.tokenizer.pad_token_id)
        # The policy reads each row's next token at the last position, so prompts pad on the left
        # (with right padding a short prompt's row would continue from its padding).
        processor.tokenizer.padding_side = self.padding_side = "left"
        vq = model.config.vq_config
        self._image_size = int(vq.num_patches * 2 ** (len(vq.channel_multiplier) - 1))

    @property
    def image_size(self) -> int:
        return self._image_size

    def prompt_text(self, prompt: str) -> str:
        """The chat-formatted prompt (before the image start token the processor appends)."""
        messages = [{"role": "user", "content": [{"type": "text", "text": prompt}]}]
        return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def encode_prompts(self, prompts: list[str]) -> PromptBatch:
        check_prompts(prompts)
        texts = [self.prompt_text(p) for p in prompts]
        enc = self.processor(text=texts, generation_mode="image", padding=True, return_tensors="pt")
        ids, mask = enc["input_ids"].long(), enc["attention_mask"].bool()
        lengths = mask.sum(-1)
        if int(lengths.max()) > self.max_prompt_tokens:
            row = int(lengths.argmax())
            raise ValueError(
                f"prompt encodes to {int(lengths[row])} tokens, over the limit "
                f"max_prompt_tokens={self.max_prompt_tokens}: {prompts[row]!r:.120}"
            )
        return PromptBatch(ids, mask, tuple(prompts))

    def _check_images(self, images: Any) -> np.ndarray:
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 or len(images) == 0:
            raise ValueError(f"images must be uint8 (B, H, W, 3) with B > 0, got {images.dtype} {images.shape}")
        return images

    @torch.no_grad()
    def encode_images(self, images: np.ndarray) -> torch.Tensor:
        """uint8 (B, H, W, 3) -> (B, num_image_tokens) VQ tokens; resized (bicubic) to :attr:`image_size`."""
        images = self._check_images(images)
        vqmodel = self.model.model.vqmodel
        pixels = torch.as_tensor(images).to(self.device).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        if pixels.shape[-2:] != (self.image_size, self.image_size):
            size = (self.image_size, self.image_size)
            pixels = F.interpolate(pixels, size=size, mode="bicubic", antialias=True, align_corners=False)
        pixels = pixels.clamp(-1, 1).to(vqmodel.quant_conv.weight.dtype)
        tokens = vqmodel.encode(pixels).image_tokens
        return tokens.view(len(images), -1).long().cpu()

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor | np.ndarray) -> np.ndarray:
        """(B, num_image_tokens) -> uint8 (B, image_size, image_size, 3), mapping [-1, 1] to [0, 255]."""
        tokens = torch.as_tensor(np.asarray(tokens.cpu() if isinstance(tokens, torch.Tensor) else tokens))
        if tokens.ndim != 2 or tokens.shape[1] != self.num_image_tokens or len(tokens) == 0:
            raise ValueError(f"tokens must have shape (B, {self.num_image_tokens}), got {tuple(tokens.shape)}")
        if tokens.dtype in (torch.int32, torch.int16, torch.uint8, torch.int8):
            tokens = tokens.long()
        self.policy.check_tokens(tokens)
        pixels = self.model.decode_image_tokens(tokens.to(self.device)).float().cpu().numpy()
        return np.clip((pixels + 1.0) / 2.0 * 255.0, 0, 255).astype(np.uint8)

    def generate(
        self, prompts: list[str], sampling: SamplingConfig | None = None, seed: int | None = None
    ) -> np.ndarray:
        """Prompts -> uint8 images; ``sampling`` defaults to :attr:`default_sampling` (guided, w = 5)."""
        return super().generate(prompts, sampling or self.default_sampling, seed)


# -- random Janus models for tests and throughput checks (offline) ------------------------------
_SPECIALS = (
    "<｜begin▁of▁sentence｜>",
    "<｜end▁of▁sentence｜>",
    "<｜▁pad▁｜>",
    "<unk>",
    "<image_placeholder>",
    "<begin_of_image>",
    "<end_of_image>",
    "<|User|>",
    "<|Assistant|>",
)
_WORDS = (
    *("a", "an", "the", "of", "and", "on", "in", "to", "left", "right", "above", "below", "next", "with", "photo"),
    *("one", "two", "three", "four", "red", "green", "blue", "yellow", "purple", "orange", "black", "white"),
    *("circle", "square", "triangle", "star", "cross", "ring", "big", "small", ":", ".", ","),
)
_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}<|User|>: "
    "{% for content in message['content'] %}{% if content['type'] == 'text' %}{{ content['text'] | trim }}"
    "{% endif %}{% endfor %}\n\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|Assistant|>:{% endif %}"
)


#: :func:`build_random` arguments that give Janus-Pro-1B's image-generation shapes (Llama 24 x 2048, 576 tokens
#: of a 16,384-code VQ decoded 16x up to 384 pixels): random weights with its cost, for GPU throughput checks.
JANUS_PRO_1B_SHAPES: dict[str, Any] = {
    "grid": 24, "codebook_size": 16384, "hidden": 2048, "layers": 24, "heads": 16, "kv_heads": 16,
    "intermediate": 5632, "vq_channel_multiplier": (1, 1, 2, 2, 4), "vq_channels": 128,
}


def build_random(
    seed: int = 0,
    grid: int = 4,
    codebook_size: int = 64,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 2,
    kv_heads: int = 1,
    intermediate: int | None = None,
    vq_channel_multiplier: tuple[int, ...] = (1, 1, 1),
    vq_channels: int = 32,
    device: str | torch.device = "cpu",
):
    """A random ``(JanusForConditionalGeneration, JanusProcessor)``, built offline; tiny by default (well under a second).

    A word-level tokenizer (a few shape words, the Janus special tokens, BOS added, left padding), a Llama of
    ``layers`` x ``hidden``, and a VQ with ``codebook_size`` codes and one resolution per ``vq_channel_multiplier``
    entry, decoding ``grid * grid`` tokens to ``grid * 2 ** (len(vq_channel_multiplier) - 1)`` pixels. ``**JANUS_PRO_1B_SHAPES`` sizes it as
    Janus-Pro-1B; ``device`` is where the weights are created (a large model builds much faster on a GPU).
    """
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import (
        JanusConfig,
        JanusForConditionalGeneration,
        JanusImageProcessor,
        JanusProcessor,
        JanusVisionConfig,
        JanusVQVAEConfig,
        LlamaConfig,
        PreTrainedTokenizerFast,
    )

    vocab = {token: i for i, token in enumerate((*_SPECIALS, *_WORDS))}
    bos, eos, pad, unk, image, boi, eoi = _SPECIALS[:7]
    backend = Tokenizer(WordLevel(vocab, unk_token=unk))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.add_special_tokens(list(_SPECIALS))
    backend.post_processor = processors.TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, vocab[bos])])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=bos,
        eos_token=eos,
        pad_token=pad,
        unk_token=unk,
        extra_special_tokens={"image_token": image, "boi_token": boi, "eoi_token": eoi},
        padding_side="left",
    )
    scale = 2 ** (len(vq_channel_multiplier) - 1)  # each VQ resolution after the first halves the side
    image_size = scale * grid
    processor = JanusProcessor(
        image_processor=JanusImageProcessor(size={"height": image_size, "width": image_size}),
        tokenizer=tokenizer,
        chat_template=_CHAT_TEMPLATE,
        num_image_tokens=grid * grid,
    )
    text = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        intermediate_size=intermediate or 2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=512,
        bos_token_id=vocab[bos],
        eos_token_id=vocab[eos],
        pad_token_id=vocab[pad],
    )
    vision = JanusVisionConfig(
        hidden_size=hidden,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=scale,
        projection_dim=hidden,
        num_image_tokens=grid * grid,
        mlp_ratio=2.0,
    )
    vq = JanusVQVAEConfig(
        embed_dim=8,
        num_embeddings=codebook_size,
        latent_channels=vq_channels,
        base_channels=vq_channels,  # GroupNorm(32) needs a multiple of 32
        channel_multiplier=list(vq_channel_multiplier),
        num_res_blocks=1,
        projection_dim=hidden,
        image_token_embed_dim=hidden,
    )
    config = JanusConfig(text_config=text, vision_config=vision, vq_config=vq, image_token_id=vocab[image])
    with torch.random.fork_rng(devices=[]), torch.no_grad(), torch.device(device):
        torch.manual_seed(seed)
        model = JanusForConditionalGeneration(config).eval()
        # transformers initialises with std 0.02: next-token distributions come out uniform to 1e-2 and guidance
        # changes nothing. Redraw the generation path at unit scale so distributions are peaked and CFG matters.
        inner = model.model
        parts = (inner.language_model, inner.generation_embeddings, inner.generation_aligner, inner.generation_head)
        for part in parts:
            for module in part.modules():
                if isinstance(module, nn.Linear):
                    module.weight.normal_(0.0, 1.5 / module.in_features**0.5)
                elif isinstance(module, nn.Embedding):
                    module.weight.normal_(0.0, 1.0)
    model.generation_config.generation_kwargs = {"boi_token_id": vocab[boi]}  # where generate() looks for it
    return model, processor
