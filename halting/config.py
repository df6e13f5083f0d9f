"""The experiment config: one flat, frozen record whose field names are the runbook's flags.

`halting train --flag value`, a `config.yaml` experiment block and `train(config)` all build
one `ExperimentConfig`. Unknown keys and flags that do not apply to the chosen task, model or
criterion are errors (never accepted-and-ignored). Model dataclasses (`ACTRNNConfig`,
`UTConfig`) are derived from it in `halting.models`.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import io
import json
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from halting.criteria import CRITERIA, criterion_class  # the registry: the `halting` choices
from halting.data.toy import ADDITION_DISTRIBUTIONS
from halting.tasks import TASKS, get_task  # the registry: the `task` choices

MODEL_TYPES = ("act_rnn", "universal_transformer")

# The one place the runbook's two spellings of a quantity meet: its flag per backbone. Inside the
# package each quantity has one name: M (`max_ponder`), tau (`tau`), the halting unit's initial
# bias (`halt_bias`); config.yaml, the CLI and checkpoints keep the runbook's names.
RUNBOOK_NAMES = {
    "act_rnn": {"M": "time_limit", "tau": "time_penalty", "halt_bias": "rnn_halt_bias"},
    "universal_transformer": {
        "M": "ut_max_hops",
        "tau": "ut_act_loss_weight",
        "halt_bias": "ut_halt_bias",
    },
}


def max_ponder_of(model_type: str | None, config: dict[str, Any]) -> int | None:
    """M, the backbone's step limit (also K of fixed depth), from a config dict: `time_limit`
    for the ACT-RNN, `ut_max_hops` for the Universal Transformer; None when it is absent."""
    names = RUNBOOK_NAMES.get(model_type or "")
    value = config.get(names["M"]) if names else None
    return None if value is None else int(value)


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that defines one training run (not where it runs: see profiles/)."""

    # --- what is learned ------------------------------------------------------------------
    task: str = "maze"  # what is learned: maze (Maze-Hard) | parity | addition (Graves 3.1, 3.3)
    model_type: str = "act_rnn"  # backbone: act_rnn (Graves' ACT-RNN) | universal_transformer
    halting: str = "act"  # halting criterion: act | pondernet | fixed (always M steps)
    seed: int = 0  # fixes data, initialisation and order
    # maze
    data_dir: str | None = None  # maze: HRM-format dataset folder with train/ and test/
    # parity (Graves 3.1)
    bits: int = 16  # parity: length of the input vector of -1/0/+1 entries
    parity_layout: str = "random"  # parity: random positions of set entries | prefix (runbook's)
    parity_extrapolate: bool = False  # parity: train on k <= bits/2 set entries, test k > bits/2
    # addition (Graves 3.3)
    sequence_length: int = 5  # addition: numbers in a sequence (input steps)
    max_digits: int = 5  # addition: most decimal digits of each number
    addition_distribution: str = "fixed"  # addition: fixed | graves (1..T numbers, 0-9 digits)
    val_size: int = 1000  # toy tasks: size of the fixed validation set
    # --- backbone ---------------------------------------------------------------------------
    hidden_size: int = 512  # state size H of the RNN cell / of the UT's residual stream
    # ACT-RNN
    time_limit: int = 16  # ACT-RNN: M, maximum ponder steps (also K for --halting fixed)
    rnn_cell_type: str = "gru"  # ACT-RNN recurrent cell: gru | lstm | tanh_rnn
    rnn_encoder: str = "flat"  # maze: flat (grid as one input) | conv (per-cell conv GRU)
    rnn_halt_bias: float = 1.0  # ACT-RNN: Graves' initial halting bias (+1: N = 2 at init)
    # Universal Transformer
    ut_embedding_size: int = 64  # UT: token embedding size E, projected to hidden_size
    ut_heads: int = 4  # UT: attention heads (they divide ut_key_depth and ut_value_depth)
    ut_key_depth: int = 256  # UT: total query/key size over all heads
    ut_value_depth: int = 256  # UT: total value size over all heads
    ut_filter_size: int = 256  # UT: inner size of the feed-forward block
    ut_max_hops: int = 6  # UT: M, maximum hops of the shared layer (K when not halting)
    ut_act: bool = False  # UT: per-position halting by the criterion; off: fixed ut_max_hops
    ut_act_loss_weight: float = 0.001  # UT: tau, the weight of the ponder cost in the loss
    ut_halt_bias: float = 1.0  # UT: initial bias of the halting unit (as rnn_halt_bias)
    ut_act_update: str = "weighted"  # UT state: weighted (Graves) | interpolate (tensor2tensor)
    dropout: float = 0.0  # dropout probability (UT attention and blocks; ACT-RNN readout)
    # --- halting criterion ------------------------------------------------------------------
    act_eps: float = 0.01  # ACT: halt when sum h >= 1 - eps
    lambda_p: float = 0.2  # PonderNet: prior geometric parameter
    pondernet_eval: str = "sample"  # PonderNet evaluation halting: sample | median
    time_penalty: float = 0.001  # tau (ACT-RNN); PonderNet's beta when halting=pondernet
    time_penalty_start: float = 0.0  # tau at step 0, ramped to its final value (warmup steps)
    time_penalty_warmup_steps: int = 0  # steps of the linear ramp of tau from its start value
    # --- optimisation -----------------------------------------------------------------------
    batch_size: int = 128  # examples per optimiser step
    max_epochs: int | None = None  # maze: epochs to train (the toy tasks count steps)
    max_steps: int | None = None  # optimiser steps to train (the toy tasks count steps)
    learning_rate: float = 1e-4  # AdamW learning rate after warmup
    weight_decay: float = 0.0  # AdamW weight decay
    lr_warmup_epochs: int = 0  # maze: linear learning-rate warmup over these epochs
    lr_warmup_steps: int = 0  # linear learning-rate warmup over these steps
    lr_schedule: str = "constant"  # learning rate after warmup: constant | cosine (to 0)
    grad_clip: float | None = None  # clip the global gradient norm
    use_ema: bool = False  # validate, save and evaluate an exponential moving average of weights
    ema_decay: float = 0.999  # use_ema: decay of the moving average per step

    def __post_init__(self) -> None:
        _check_choice("task", self.task, TASKS)
        _check_choice("model_type", self.model_type, MODEL_TYPES)
        _check_choice("halting", self.halting, CRITERIA)
        _check_choice("parity_layout", self.parity_layout, ("random", "prefix"))
        _check_choice("rnn_cell_type", self.rnn_cell_type, ("gru", "lstm", "tanh_rnn"))
        _check_choice("rnn_encoder", self.rnn_encoder, ("flat", "conv"))
        _check_choice("ut_act_update", self.ut_act_update, ("weighted", "interpolate"))
        _check_choice("pondernet_eval", self.pondernet_eval, ("sample", "median"))
        _check_choice("lr_schedule", self.lr_schedule, ("constant", "cosine"))
        _check_choice("addition_distribution", self.addition_distribution, ADDITION_DISTRIBUTIONS)
        for name in (
            "bits",
            "sequence_length",
            "max_digits",
            "hidden_size",
            "time_limit",
            "ut_embedding_size",
            "ut_heads",
            "ut_max_hops",
            "batch_size",
            "val_size",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"config field {name!r} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.lambda_p < 1.0:
            raise ValueError(f"config field 'lambda_p' must be in (0, 1), got {self.lambda_p}")
        get_task(self.task).check(self)
        if (
            self.model_type == "universal_transformer"
            and not self.ut_act
            and criterion_class(self.halting).has_halting_unit
        ):
            raise ValueError(
                "universal_transformer without ut_act runs a fixed ut_max_hops: set ut_act: true "
                f"to use halting {self.halting!r}, or halting: fixed"
            )
        if self.rnn_encoder == "conv" and self.rnn_cell_type != "gru":
            raise ValueError("rnn_encoder 'conv' is a convolutional GRU: set rnn_cell_type: gru")
        if self.max_epochs is None and self.max_steps is None:
            raise ValueError("set max_epochs or max_steps")

    @property
    def criterion(self) -> str:
        """The halting criterion actually used (the UT without ut_act is fixed-depth)."""
        return self.halting if self.model_type == "act_rnn" or self.ut_act else "fixed"

    @property
    def max_ponder(self) -> int:
        """M: the step limit of the backbone (K of fixed depth)."""
        return int(getattr(self, RUNBOOK_NAMES[self.model_type]["M"]))

    @property
    def tau(self) -> float:
        """Final weight of the halting penalty (PonderNet's beta); 0 without a halting unit."""
        if not criterion_class(self.criterion).has_halting_unit:
            return 0.0
        return getattr(self, RUNBOOK_NAMES[self.model_type]["tau"])

    @property
    def halt_bias(self) -> float:
        """Initial bias of the halting unit (Graves: +1, so N = 2 at initialisation)."""
        return getattr(self, RUNBOOK_NAMES[self.model_type]["halt_bias"])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def digest(self) -> str:
        """Short hash of the canonical JSON of the config (names checkpoint folders)."""
        return config_hash(self.to_dict())


# Fields that only make sense for some task / model / criterion. A value that differs from the
# default for an inapplicable field is an error: it would be silently ignored otherwise.
def _has_unit(c: ExperimentConfig) -> bool:
    return criterion_class(c.criterion).has_halting_unit


def _task_field(name: str):
    return lambda c: name in get_task(c.task).fields


def _criterion_field(name: str):
    return lambda c: name in criterion_class(c.criterion).fields


_APPLIES: dict[str, Any] = {
    **{f: _task_field(f) for task in TASKS.values() for f in task.fields},
    **{f: _criterion_field(f) for cls in CRITERIA.values() for f in cls.fields},
    "time_limit": lambda c: c.model_type == "act_rnn",
    "rnn_cell_type": lambda c: c.model_type == "act_rnn",
    "rnn_encoder": lambda c: c.model_type == "act_rnn" and _task_field("rnn_encoder")(c),
    "rnn_halt_bias": lambda c: c.model_type == "act_rnn" and _has_unit(c),
    "time_penalty": lambda c: c.model_type == "act_rnn" and _has_unit(c),
    **{
        f"ut_{k}": (lambda c: c.model_type == "universal_transformer")
        for k in (
            "embedding_size",
            "heads",
            "key_depth",
            "value_depth",
            "filter_size",
            "max_hops",
            "act",
        )
    },
    "ut_act_loss_weight": lambda c: c.model_type == "universal_transformer" and c.ut_act,
    "ut_halt_bias": lambda c: c.model_type == "universal_transformer" and c.ut_act,
    "ut_act_update": lambda c: (
        c.model_type == "universal_transformer"
        and c.ut_act
        and criterion_class(c.criterion).reads_update_rule
    ),  # PonderNet's loss and halting never read the mixed state
    "time_penalty_start": _has_unit,
    "time_penalty_warmup_steps": _has_unit,
    "ema_decay": lambda c: c.use_ema,
}

_DEFAULTS = {f.name: f.default for f in fields(ExperimentConfig)}


def _check_choice(name: str, value: Any, choices: Iterable[str]) -> None:
    """`choices`: a tuple, or a registry (its names, read at the call: a task or criterion
    registered after import counts)."""
    if value not in choices:
        raise ValueError(
            f"config field {name!r} must be one of {', '.join(choices)}; got {value!r}"
        )


@functools.cache
def field_docs() -> dict[str, tuple[str, tuple[str, ...] | None]]:
    """Each ExperimentConfig field -> (its trailing `# comment` above, the one description of
    the field; its choices from the `_check_choice` calls of __post_init__, or None)."""
    source = Path(__file__).read_text()
    comments = {
        tok.start[0]: tok.string.lstrip("#").strip()
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    }
    body = next(
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.ClassDef) and node.name == ExperimentConfig.__name__
    ).body
    choices = {}
    for call in ast.walk(next(f for f in body if getattr(f, "name", "") == "__post_init__")):
        if isinstance(call, ast.Call) and getattr(call.func, "id", "") == _check_choice.__name__:
            name, _, values = call.args
            choices[ast.literal_eval(name)] = (
                tuple(globals()[values.id])  # a tuple, or a registry's names
                if isinstance(values, ast.Name)
                else ast.literal_eval(values)
            )
    return {
        node.target.id: (comments.get(node.end_lineno, ""), choices.get(node.target.id))
        for node in body
        if isinstance(node, ast.AnnAssign)
    }


def inapplicable_fields(config: ExperimentConfig, given: set[str]) -> list[str]:
    """Fields in `given` that the config's task/model/criterion does not use."""
    return sorted(k for k in given if k in _APPLIES and not _APPLIES[k](config))


def make_config(values: dict[str, Any], source: str = "config") -> ExperimentConfig:
    """Build and validate an ExperimentConfig from a mapping (flags, YAML block, JSON).

    Raises ValueError naming `source` and the offending key for unknown or inapplicable keys.
    """
    unknown = sorted(set(values) - set(_DEFAULTS))
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {', '.join(unknown)}")
    try:
        config = ExperimentConfig(**values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: {exc}") from None
    bad = [k for k in inapplicable_fields(config, set(values)) if values[k] != _DEFAULTS[k]]
    if bad:
        raise ValueError(
            f"{source}: {', '.join(bad)} do(es) not apply to task={config.task}, "
            f"model_type={config.model_type}, halting={config.criterion}"
        )
    return config


def canonical_json(values: Any) -> str:
    """`values` as canonical JSON: sorted keys, no spaces, str() of what JSON cannot encode.
    The workflow's params and config_hash both use it: a change of output reruns every job."""
    return json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(values: dict[str, Any], length: int = 12) -> str:
    """sha256 of the canonical JSON (sorted keys) of `values`, first `length` hex digits."""
    text = canonical_json(values)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


# The length of a run: a checkpoint of the same config with other totals is continued
# (halting.training.train), and the workflow's checkpoint folder is named without them.
TOTALS = ("max_steps", "max_epochs")


def config_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human-readable `key: old -> new` lines for keys whose values differ."""
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]
