"""Backbones: plain nn.Modules that take a halting criterion (see `halting.criteria`).

`MODELS` is the explicit registry; `build_model(config, data_meta)` derives each model's frozen
Config from the experiment config and the sizes the data dictates (vocab, cells, places).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from halting.config import ExperimentConfig
from halting.models.act_rnn import ACTRNN, ACTRNNConfig
from halting.models.universal_transformer import UniversalTransformer, UTConfig

MODELS: dict[str, tuple[type[nn.Module], type]] = {
    "act_rnn": (ACTRNN, ACTRNNConfig),
    "universal_transformer": (UniversalTransformer, UTConfig),
}


def io_shapes(config: ExperimentConfig, data_meta: dict[str, Any]) -> tuple[int, tuple[int, ...]]:
    """(input_size, output_shape) of a task: see the model Config docstrings."""
    if config.task == "parity":
        return config.bits, (2,)
    if config.task == "addition":
        return 10 * config.max_digits, (int(data_meta["places"]), 11)
    cells = int(data_meta["seq_len"])
    vocab = int(data_meta["vocab_size"])
    return cells, ((cells, vocab) if config.model_type == "act_rnn" else (vocab,))


def build_model(config: ExperimentConfig, data_meta: dict[str, Any]) -> nn.Module:
    """Instantiate the registered model for `config.model_type`."""
    cls, cfg_cls = MODELS[config.model_type]
    input_size, output_shape = io_shapes(config, data_meta)
    fields = set(cfg_cls.__dataclass_fields__) - {
        "task",
        "input_size",
        "output_shape",
        "criterion",
        "vocab_size",
    }
    kwargs = {k: getattr(config, k) for k in fields}
    return cls(
        cfg_cls(
            task=config.task,
            input_size=input_size,
            output_shape=output_shape,
            criterion=config.criterion,
            vocab_size=int(data_meta.get("vocab_size", 6)),
            **kwargs,
        )
    )
