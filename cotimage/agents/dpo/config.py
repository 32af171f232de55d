"""DPO's configuration."""

from __future__ import annotations

from dataclasses import dataclass

from cotimage.agents.common.config import AgentConfig, require
from cotimage.checks import is_int

MODES = ("offline", "online", "iterative")
LOSS_TYPES = ("sigmoid", "ipo", "hinge")


@dataclass
class DPOConfig(AgentConfig):
    """Direct Preference Optimization (Rafailov et al., 2023) on image pairs, with TRL's loss variants.

    A pair is the best and the worst of ``samples_per_prompt`` images drawn for one prompt
    through the env and scored by its reward model; groups whose images all score the same
    are dropped. The loss compares the policy's and the frozen reference's sequence
    log-probabilities (summed over image tokens) of the chosen and the rejected image.

    Attributes:
        learning_rate: Adam learning rate. The default, 3e-5, is GRPO's
            (:class:`~cotimage.agents.grpo.GRPOConfig`); the benchmarks set each agent's own
            rate (``cotimage.bench.settings.AGENT_SETTINGS``), and there DPO's differs from GRPO's.
        mode: Where pairs come from.
            ``"online"``: every update draws a fresh batch of ``batch_size`` images
            (``batch_size / samples_per_prompt`` prompts) from the current policy and takes
            one gradient step on its pairs.
            ``"iterative"``: each update is a round: draw ``prompts_per_round`` prompts x
            ``samples_per_prompt`` images from the current policy, then train
            ``epochs_per_round`` passes over the round's pairs in minibatches of
            ``pairs_per_update``. Images are drawn in whole batches of ``batch_size``, so a
            round draws ``ceil(prompts_per_round / prompts_per_batch) * batch_size`` images
            (the extra groups of the last batch are not paired): 6 prompts x K = 4 at
            ``batch_size=16`` are two batches, 32 images, not 24. ``learn(total_images)``
            runs whole rounds until it has drawn ``total_images`` images, so
            ``ceil(total_images / images per round)`` rounds.
            ``"offline"``: train on the :class:`~cotimage.agents.common.pairs.PairDataset`
            at ``dataset`` (written by ``python -m cotimage.agents.dpo.collect``), one
            minibatch of ``pairs_per_update`` pairs per update, reshuffled every epoch.
        samples_per_prompt: Images drawn per prompt (K) to pick a pair from; must divide
            ``batch_size``. The study uses 4, as GRPO's group size.
        beta: Strength of the implicit KL constraint to the reference; > 0. The log-ratios are
            sums over all of an image's tokens (64 for the shapes generator), so they are larger
            than a text reply's. Measured on the shapes generator (offline, 237 pairs of one
            prompt, 40 steps of 32 pairs at lr 3e-5): TRL's 0.1 fitted the pairs but drove the
            scene reward from 0.75 to 0.25; 1.0 (the default) raised it to about 0.9.
        loss_type: ``"sigmoid"`` (DPO), ``"ipo"`` (Azar et al., 2023,
            ``(d - 1 / (2 beta))^2``) or ``"hinge"`` (SLiC, ``relu(1 - beta d)``), where ``d``
            is the chosen-minus-rejected log-ratio margin. All use log-probabilities summed
            over the image's tokens. TRL averages them per token for IPO; images have
            a fixed number of tokens T, so TRL's IPO with ``beta`` is ours with ``beta / T``
            (its loss scaled by ``1 / T^2``).
        label_smoothing: Probability that a preference label is flipped (conservative DPO),
            in [0, 0.5); only the sigmoid loss uses it.
        pairs_per_update: Pairs per gradient step in the offline and iterative modes
            (default ``batch_size // samples_per_prompt``: the most pairs an online batch gives,
            so all modes take steps of the same size). Must be ``None`` online, where each
            update takes one step on all of its batch's pairs.
        prompts_per_round: Iterative mode: prompts drawn per round.
        epochs_per_round: Iterative mode: passes over each round's pairs.
        sync_reference: Iterative mode: make the policy at the start of each round the new
            reference (iterative DPO as in self-rewarding LMs); otherwise the reference stays
            the base policy in every mode.
        dataset: Offline mode: directory of a saved pair dataset.
        train_prompts: Online and iterative modes: prompts to cycle through (texts or suite
            indices) instead of drawing them from the env's suite.
    """

    learning_rate: float = 3e-5
    mode: str = "online"
    samples_per_prompt: int = 4
    beta: float = 1.0
    loss_type: str = "sigmoid"
    label_smoothing: float = 0.0
    pairs_per_update: int | None = None
    prompts_per_round: int = 256
    epochs_per_round: int = 1
    sync_reference: bool = False
    dataset: str | None = None
    train_prompts: tuple[str | int, ...] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.train_prompts is not None:
            prompts = (self.train_prompts,) if isinstance(self.train_prompts, str) or is_int(self.train_prompts) else self.train_prompts
            require(isinstance(prompts, (list, tuple)), "train_prompts", self.train_prompts,
                    "must be None, a prompt text, a suite index (int >= 0) or a list of them")
            for prompt in prompts:
                require(isinstance(prompt, str) or (is_int(prompt) and prompt >= 0), "train_prompts", self.train_prompts,
                        f"must list prompt texts or suite indices (ints >= 0); {prompt!r} is neither")
            self.train_prompts = tuple(p if isinstance(p, str) else int(p) for p in prompts)  # Python ints: saved as JSON
        if self.dataset is not None:
            self.dataset = str(self.dataset)
        k = self.samples_per_prompt
        require(self.mode in MODES, "mode", self.mode, f"is not allowed; choose one of {list(MODES)}")
        require(k >= 2, "samples_per_prompt", k, "must be >= 2 (a pair needs two images of one prompt)")
        require(self.batch_size % k == 0, "samples_per_prompt", k, f"must divide batch_size={self.batch_size}")
        require(self.beta > 0, "beta", self.beta, "must be > 0")
        require(self.loss_type in LOSS_TYPES, "loss_type", self.loss_type, f"is not allowed; choose one of {list(LOSS_TYPES)}")
        require(0 <= self.label_smoothing < 0.5, "label_smoothing", self.label_smoothing, "must lie in [0, 0.5)")
        require(
            self.label_smoothing == 0 or self.loss_type == "sigmoid",
            "label_smoothing", self.label_smoothing, f"only applies to loss_type='sigmoid', not {self.loss_type!r}",
        )
        require(self.pairs_per_update is None or self.pairs_per_update >= 1, "pairs_per_update", self.pairs_per_update, "must be None or >= 1")
        require(
            self.pairs_per_update is None or self.mode != "online",
            "pairs_per_update", self.pairs_per_update, "only applies to mode='offline' or 'iterative', not 'online'",
        )
        require(self.prompts_per_round >= 1, "prompts_per_round", self.prompts_per_round, "must be >= 1")
        require(self.epochs_per_round >= 1, "epochs_per_round", self.epochs_per_round, "must be >= 1")
        require(not self.sync_reference or self.mode == "iterative", "sync_reference", self.sync_reference, "only applies to mode='iterative'")
        if self.mode == "offline":
            require(self.dataset is not None, "dataset", self.dataset, "must name a pair dataset directory in mode='offline'")
            require(self.train_prompts is None, "train_prompts", self.train_prompts, "does not apply to mode='offline' (the dataset holds the prompts)")
        else:
            require(self.dataset is None, "dataset", self.dataset, f"only applies to mode='offline', not {self.mode!r}")
        require(self.train_prompts is None or len(self.train_prompts) > 0, "train_prompts", self.train_prompts, "must be None or non-empty")

    @property
    def minibatch_pairs(self) -> int:
        """Pairs per gradient step in the offline and iterative modes."""
        return self.pairs_per_update or self.batch_size // self.samples_per_prompt

    @property
    def prompts_per_batch(self) -> int:
        """Prompts in one batch of ``batch_size`` images."""
        return self.batch_size // self.samples_per_prompt
