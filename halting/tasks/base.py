"""The task interface: everything the pipeline knows about one task, behind one object.

A task (halting/tasks/parity.py, addition.py, maze.py) says what its examples look like to a
backbone (`input_kind`, `io_shapes`), how a batch is scored (`unit_loss`, `batch_metrics` in
training; `records`, `summary` in evaluation), which number is its headline, how hard an example
is (`difficulty` in `eval_data`), which config fields are its own, and where its data comes from
(`datamodule`, `eval_data`). Their `config` is an ExperimentConfig (halting/config.py, which
sits above the tasks: it checks a task's `fields`). `halting.tasks.TASKS` registers them;
nothing outside `halting/tasks/` branches on a task's name. Adding a task: docs/extending.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable

    import pytorch_lightning as pl
    from torch import Tensor


Batch = dict[str, "Tensor"]
Streams = tuple["Callable[[int], dict[str, np.ndarray]]", "Callable[[], dict[str, np.ndarray]]"]

# How a task's input reaches a backbone (halting/models): "vector", a float vector of -1/0/+1
# entries (one RNN input step; UT tokens behind a CLS position that reads out the class);
# "sequence", one float vector per input step (RNN steps; UT positions, causal attention);
# "grid", a square grid of tokens (embedded per cell; per-cell outputs).
INPUT_KINDS = ("vector", "sequence", "grid")


class Task(Protocol):
    """One task. Attributes: `name` (the config's `task`), `display_name`, `headline` (the
    eval.json metric of its papers), `difficulty_label` (what per_example's `difficulty` is),
    `input_kind` (INPUT_KINDS), `fields` (ExperimentConfig fields only this task reads),
    `example_columns` (per_example.parquet columns beyond the common ones), `counts_epochs`
    (trained in epochs over a fixed set, else in steps of a generated stream)."""

    name: ClassVar[str]
    display_name: ClassVar[str]
    headline: ClassVar[str]
    difficulty_label: ClassVar[str]
    input_kind: ClassVar[str]
    fields: ClassVar[tuple[str, ...]]
    example_columns: ClassVar[tuple[str, ...]]
    counts_epochs: ClassVar[bool]

    def check(self, config: Any) -> None:
        """Raise ValueError naming the field if the config cannot run this task."""

    def io_shapes(self, config: Any, data_meta: dict[str, Any]) -> tuple[int, tuple[int, ...]]:
        """(input_size, output shape of one output unit: an example, a step or a cell)."""

    def model_input(self, batch: Batch) -> Tensor:
        """The tensor a model consumes from a batch."""

    def model_mask(self, batch: Batch) -> Tensor | None:
        """(B, T) the input steps that ponder (None: all)."""

    def output_weights(self, p: Tensor) -> Tensor:
        """p (B, U, M) of the units whose outputs `unit_loss` scores."""

    def unit_loss(self, logits: Tensor, batch: Batch) -> Tensor:
        """Task loss per output unit (B, U)."""

    def reduce_loss(self, unit_loss: Tensor) -> Tensor:
        """The scalar task loss from `unit_loss`."""

    def batch_metrics(self, logits: Tensor, batch: Batch) -> dict[str, Tensor]:
        """Batch means of the task metrics, as training logs them (`train/<name>`)."""

    def records(self, logits: Tensor, batch: Batch) -> dict[str, Any]:
        """Per-example results of one batch, (B,) each; `correct` is the headline's verdict."""

    def summary(self, records: dict[str, np.ndarray]) -> dict[str, float]:
        """eval.json's task metrics from the concatenated per-example records."""

    def examples(
        self, data: dict[str, np.ndarray], saved: dict[str, list], k: int
    ) -> dict[str, np.ndarray] | None:
        """examples.npz arrays of the first k examples, or None (nothing saved)."""

    def datamodule(self, config: Any, data_workers: int = 0) -> pl.LightningDataModule:
        """The training/validation DataModule; its `data_meta` goes into the checkpoint."""

    def eval_data(
        self,
        config: Any,
        data_meta: dict[str, Any],
        data_dir: str | None,
        split: str,
        n_examples: int | None,
    ) -> dict[str, np.ndarray]:
        """The examples to evaluate (numpy, leading example axis) with `example_id` and
        `difficulty`; ValueError (one line) when they cannot be loaded."""


class ToyTask:
    """What parity and addition share: a seeded generator stream for training, a fixed
    validation set, evaluation on that set (or on the first training batches)."""

    example_columns: ClassVar[tuple[str, ...]] = ()
    counts_epochs: ClassVar[bool] = False  # fresh batches every step: max_steps, no epochs

    def check(self, config: Any) -> None:
        pass

    def model_input(self, batch: Batch) -> Tensor:
        return batch["x"]

    def model_mask(self, batch: Batch) -> Tensor | None:
        return None

    def output_weights(self, p: Tensor) -> Tensor:
        return p

    def reduce_loss(self, unit_loss: Tensor) -> Tensor:
        return unit_loss.mean()

    def examples(self, data, saved, k) -> None:
        return None

    def streams(self, config: Any) -> Streams:
        """(make_batch, make_val): the training batch at a global step, the validation set."""
        raise NotImplementedError

    def data_meta(self, config: Any) -> dict[str, Any]:
        """The sizes the checkpoint records."""
        raise NotImplementedError

    def difficulty(self, data: dict[str, np.ndarray]) -> np.ndarray:
        """Per-example difficulty (N,) of generated data."""
        raise NotImplementedError

    def datamodule(self, config: Any, data_workers: int = 0):
        from halting.data.modules import ToyDataModule

        return ToyDataModule(
            config, self.streams(config), self.data_meta(config), data_workers=data_workers
        )

    def eval_data(self, config, data_meta, data_dir, split, n_examples) -> dict[str, np.ndarray]:
        size = config.val_size if n_examples is None else n_examples
        make_batch, make_val = self.streams(config)  # the very streams training draws from
        if split == "train":  # the first training batches (steps 0, 1, ...) cut to `size`
            parts = [make_batch(step) for step in range(-(-size // config.batch_size))]
            data = {k: np.concatenate([p[k] for p in parts])[:size] for k in parts[0]}
        else:
            data = make_val()  # the validation set training validated on
        n = len(data["y"]) if n_examples is None else min(n_examples, len(data["y"]))
        data = {k: v[:n] for k, v in data.items()}
        return {
            **data,
            "example_id": np.arange(n, dtype=np.int64),
            "difficulty": self.difficulty(data),
        }
