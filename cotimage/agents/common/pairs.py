"""Preference pairs from images drawn through the env: the best vs. the worst of K per prompt.

A :class:`PairDataset` is what preference-based agents (DPO) train on. It is made from
rollouts whose rows come in groups of K consecutive images of one prompt (the vector env's
``group_size`` reset option): :func:`make_pairs` keeps, per group, the highest-scoring image
as *chosen* and the lowest-scoring one as *rejected*, and drops groups whose images all score
the same (no preference). :func:`collect_pairs` draws such groups with any
``collect(options) -> Rollout`` function, e.g. :meth:`Agent.collect`, so the images always
come through the env.

On disk a dataset is a directory: ``pairs.safetensors`` (token arrays and scores) and
``pairs.json`` (prompts and metadata, written last).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from cotimage.agents.common.rollout import Rollout
from cotimage.checks import checked_path, require_count, save_directory
from cotimage.envs.core import text_of

FORMAT = "cotimage-pairs"
FORMAT_VERSION = 1
TENSOR_FILE, INDEX_FILE = "pairs.safetensors", "pairs.json"


def check_dataset_directory(path: str | Path, overwrite: bool, overwrite_hint: str = "overwrite=True") -> Path:
    """``path``, once checked that a pair dataset can be saved there without replacing what a user keeps.

    Raises:
        FileExistsError: if ``path``, or a directory above it, is a file; or if ``path``
            already holds a pair dataset and ``overwrite`` is false (``overwrite_hint`` says
            how to allow it).
    """
    path = save_directory(path, overwrite, "a pair dataset")
    if not overwrite and ((path / INDEX_FILE).exists() or (path / TENSOR_FILE).exists()):
        raise FileExistsError(f"{path} already holds a pair dataset; pass {overwrite_hint} to replace it")
    return path


@dataclass
class PairDataset:
    """Chosen/rejected image-token pairs with the prompts they answer.

    Attributes:
        prompts: The prompt text of each pair.
        chosen: (N, T) int64 tokens of the preferred (higher-scoring) image.
        rejected: (N, T) int64 tokens of the other image.
        chosen_scores: (N,) float32 reward of the chosen image.
        rejected_scores: (N,) float32 reward of the rejected image.
        categories: The suite category of each prompt (``None`` for custom prompts).
        metadata: How the pairs were made. :func:`make_pairs` and :func:`collect_pairs` set
            ``num_prompts`` (groups drawn), ``num_images`` (images drawn for them, including
            groups dropped as ties), ``samples_per_prompt``, ``ties_dropped``, and
            ``score_mean`` / ``score_std`` over all drawn images.
    """

    prompts: list[str]
    chosen: torch.Tensor
    rejected: torch.Tensor
    chosen_scores: torch.Tensor
    rejected_scores: torch.Tensor
    categories: list[str | None] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.prompts = list(self.prompts)
        n = len(self.prompts)
        self.categories = list(self.categories) if self.categories is not None else [None] * n
        for name in ("chosen", "rejected"):
            tokens = getattr(self, name)
            if not isinstance(tokens, torch.Tensor) or tokens.dtype != torch.long or tokens.ndim != 2 or len(tokens) != n:
                raise ValueError(f"{name} must be an int64 tensor of shape ({n}, T), got {getattr(tokens, 'dtype', type(tokens))} {tuple(getattr(tokens, 'shape', ()))}")
        if self.chosen.shape != self.rejected.shape:
            raise ValueError(f"chosen {tuple(self.chosen.shape)} and rejected {tuple(self.rejected.shape)} must have one shape")
        for name in ("chosen_scores", "rejected_scores"):
            scores = torch.as_tensor(getattr(self, name), dtype=torch.float32)
            if scores.shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {tuple(scores.shape)}")
            setattr(self, name, scores)
        if len(self.categories) != n:
            raise ValueError(f"categories must have {n} entries, got {len(self.categories)}")

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def num_images(self) -> int:
        """Images drawn to make these pairs (``2 * len`` when the metadata does not say)."""
        return int(self.metadata.get("num_images", 2 * len(self)))

    def select(self, rows: torch.Tensor | Sequence[int]) -> PairDataset:
        """The pairs ``rows``, in that order (metadata is not carried over)."""
        rows = torch.as_tensor(rows, dtype=torch.long)
        picks = rows.tolist()
        return PairDataset(
            [self.prompts[i] for i in picks], self.chosen[rows], self.rejected[rows],
            self.chosen_scores[rows], self.rejected_scores[rows], [self.categories[i] for i in picks],
        )

    def fingerprint(self) -> str:
        """SHA-256 of prompts, tokens and scores: tells two datasets apart."""
        digest = hashlib.sha256(json.dumps(self.prompts).encode())
        for tensor in (self.chosen, self.rejected, self.chosen_scores, self.rejected_scores):
            digest.update(tensor.contiguous().numpy().tobytes())
        return digest.hexdigest()

    @classmethod
    def concat(cls, parts: Sequence[PairDataset], metadata: dict[str, Any] | None = None) -> PairDataset:
        """All pairs of ``parts`` in order, with ``metadata`` (default: none)."""
        if not parts:
            raise ValueError("concat needs at least one dataset")
        return cls(
            [p for part in parts for p in part.prompts],
            torch.cat([part.chosen for part in parts]),
            torch.cat([part.rejected for part in parts]),
            torch.cat([part.chosen_scores for part in parts]),
            torch.cat([part.rejected_scores for part in parts]),
            [c for part in parts for c in part.categories],
            dict(metadata or {}),
        )

    # -- disk ----------------------------------------------------------------------------------
    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the dataset into directory ``path``.

        Raises:
            FileExistsError: if ``path`` already holds a pair dataset and ``overwrite`` is false,
                or it or a directory above it is a file (see :func:`check_dataset_directory`).
        """
        path = check_dataset_directory(path, overwrite)
        index = json.dumps({  # first: a value JSON cannot hold fails before any file is touched
            "format": FORMAT, "version": FORMAT_VERSION, "num_pairs": len(self),
            "prompts": self.prompts, "categories": self.categories, "metadata": self.metadata,
        }, indent=1)
        path.mkdir(parents=True, exist_ok=True)
        (path / INDEX_FILE).unlink(missing_ok=True)  # a dataset is complete only once its index is written
        tensors = {
            "chosen": self.chosen, "rejected": self.rejected,
            "chosen_scores": self.chosen_scores, "rejected_scores": self.rejected_scores,
        }
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(path / TENSOR_FILE))
        (path / INDEX_FILE).write_text(index)
        return path

    @classmethod
    def load(cls, path: str | Path) -> PairDataset:
        """Read a dataset written by :meth:`save`."""
        path = checked_path("path", path)
        if not (path / INDEX_FILE).is_file() or not (path / TENSOR_FILE).is_file():
            raise FileNotFoundError(f"no pair dataset at {path} (expected {INDEX_FILE} and {TENSOR_FILE})")
        try:
            index = json.loads((path / INDEX_FILE).read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path / INDEX_FILE} is not a pair dataset's index: {error}") from error
        index = index if isinstance(index, dict) else {}
        if index.get("format") != FORMAT or index.get("version") != FORMAT_VERSION:
            raise ValueError(f"{path} is not a {FORMAT} v{FORMAT_VERSION} dataset (format={index.get('format')!r}, version={index.get('version')!r})")
        missing = [key for key in ("prompts", "categories", "metadata") if key not in index]
        if missing:
            raise ValueError(f"{path / INDEX_FILE} is not a whole pair dataset's index: it lacks {missing}")
        tensors = load_file(str(path / TENSOR_FILE))
        return cls(index["prompts"], tensors["chosen"], tensors["rejected"], tensors["chosen_scores"],
                   tensors["rejected_scores"], index["categories"], index["metadata"])


def _pairs(prompts: Sequence[Any], tokens: torch.Tensor, scores: torch.Tensor, samples_per_prompt: int) -> PairDataset:
    k = require_count("samples_per_prompt", samples_per_prompt, least=2)
    if len(tokens) % k:
        raise ValueError(f"{len(tokens)} images do not split into groups of samples_per_prompt={k}")
    texts = [text_of(p) for p in prompts]
    # Pair datasets live on the CPU (they are saved and fingerprinted); the loss moves tokens to the policy.
    tokens, scores = tokens.cpu(), torch.as_tensor(scores, dtype=torch.float32).cpu()
    grouped = scores.view(-1, k)
    best, worst = grouped.argmax(1), grouped.argmin(1)
    keep = grouped.max(1).values > grouped.min(1).values  # a tie in the whole group: no preference
    rows, chosen, rejected = [], [], []
    for g in range(len(grouped)):
        group = texts[g * k : (g + 1) * k]
        if group.count(group[0]) != k:
            raise ValueError(f"rows {g * k}..{(g + 1) * k - 1} mix prompts; reset the env with group_size={k}")
        if keep[g]:
            rows.append(g * k)
            chosen.append(g * k + int(best[g]))
            rejected.append(g * k + int(worst[g]))
    chosen, rejected = torch.as_tensor(chosen, dtype=torch.long), torch.as_tensor(rejected, dtype=torch.long)
    return PairDataset(
        [texts[r] for r in rows],
        tokens[chosen].long(), tokens[rejected].long(), scores[chosen], scores[rejected],
        [getattr(prompts[r], "category", None) for r in rows],
        {
            "num_prompts": len(grouped), "num_images": len(tokens), "samples_per_prompt": k,
            "ties_dropped": int((~keep).sum()), "score_mean": float(scores.mean()), "score_std": float(scores.std()) if len(scores) > 1 else 0.0,
        },
    )


def make_pairs(rollout: Rollout, samples_per_prompt: int) -> PairDataset:
    """Best vs. worst image of each group of ``samples_per_prompt`` consecutive rows; ties dropped.

    Of several images sharing the best (worst) score, the first is taken.

    Raises:
        ValueError: if the rows do not split into groups of one prompt each.
    """
    return _pairs(rollout.prompts, rollout.tokens, rollout.scores, samples_per_prompt)


def prompt_chunk(prompts: Sequence[str | int], start: int, size: int) -> list[str | int]:
    """``size`` prompts from ``prompts`` starting at ``start``, cycling through the list."""
    return [prompts[(start + j) % len(prompts)] for j in range(size)]


def collect_pairs(
    collect: Callable[[dict[str, Any]], Rollout],
    batch_size: int,
    samples_per_prompt: int,
    num_prompts: int | None = None,
    prompts: Sequence[str | int] | None = None,
    *,
    on_rollout: Callable[[Rollout], None] | None = None,
    progress: bool = False,
) -> PairDataset:
    """Draw ``samples_per_prompt`` images for each of ``num_prompts`` prompts and pair them.

    Args:
        collect: ``collect(options) -> Rollout``, one batch of ``batch_size`` images through the
            vector env (e.g. :meth:`Agent.collect`); called with ``{"group_size": K}`` and, when
            ``prompts`` is given, ``{"prompts": [...]}``.
        batch_size: Images per ``collect`` call (the vector env's ``num_envs``); a multiple of K.
        samples_per_prompt: K, images per prompt.
        num_prompts: Prompts to draw (default ``len(prompts)``). Without ``prompts`` the env
            draws them from its suite; with them, they are cycled through.
        prompts: Texts or suite indices to use instead of the env's draws.
        on_rollout: Called with each batch (e.g. to log its rewards).
        progress: Show a tqdm bar over prompts.

    The last batch may hold more groups than needed: the extra ones are drawn but not kept or
    counted in the dataset's ``num_images``.
    """
    k = require_count("samples_per_prompt", samples_per_prompt, least=2)  # Python ints: saved as JSON
    if batch_size % k:
        raise ValueError(f"samples_per_prompt={k} must divide batch_size={batch_size}")
    if num_prompts is None:
        if prompts is None:
            raise ValueError("pass num_prompts, prompts, or both")
        num_prompts = len(prompts)
    num_prompts = require_count("num_prompts", num_prompts)
    if prompts is not None and len(prompts) == 0:
        raise ValueError("prompts must be None or non-empty")
    per_batch = batch_size // k
    parts, all_scores, done = [], [], 0
    with tqdm(total=num_prompts, disable=not progress, unit="prompt", desc="collect pairs") as bar:
        while done < num_prompts:
            options: dict[str, Any] = {"group_size": k}
            if prompts is not None:
                options["prompts"] = prompt_chunk(prompts, done, per_batch)
            rollout = collect(options)
            if on_rollout is not None:
                on_rollout(rollout)
            keep = min(per_batch, num_prompts - done) * k
            parts.append(_pairs(rollout.prompts[:keep], rollout.tokens[:keep], rollout.scores[:keep], k))
            all_scores.append(rollout.scores[:keep])
            done += keep // k
            bar.update(keep // k)
    scores = torch.cat(all_scores)
    metadata = {
        "num_prompts": num_prompts, "num_images": num_prompts * k, "samples_per_prompt": k,
        "ties_dropped": sum(p.metadata["ties_dropped"] for p in parts),
        "score_mean": float(scores.mean()), "score_std": float(scores.std()) if len(scores) > 1 else 0.0,
    }
    return PairDataset.concat(parts, metadata)
