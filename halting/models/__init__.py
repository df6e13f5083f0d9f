"""Backbones: plain nn.Modules that take a built halting criterion (see `halting.criteria`).

`MODELS` is the explicit registry; `build_model(config, data_meta)` derives each model's frozen
Config from the experiment config and the sizes the task and its data dictate (vocab, cells,
places), builds the criterion once and hands it to the model (`model.criterion`).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from halting.config import ExperimentConfig
from halting.criteria import build_criterion
from halting.models.act_rnn import ACTRNN, ACTRNNConfig
from halting.models.universal_transformer import UniversalTransformer, UTConfig
from halting.tasks import get_task


def _act_rnn(c: ExperimentConfig, shared: dict[str, Any]) -> ACTRNNConfig:
    return ACTRNNConfig(
        **shared, cell_type=c.rnn_cell_type, encoder=c.rnn_encoder, dropout=c.dropout
    )


def _ut(c: ExperimentConfig, shared: dict[str, Any]) -> UTConfig:
    return UTConfig(
        **shared,
        embedding_size=c.ut_embedding_size,
        heads=c.ut_heads,
        key_depth=c.ut_key_depth,
        value_depth=c.ut_value_depth,
        filter_size=c.ut_filter_size,
        act_update=c.ut_act_update,
        dropout=c.dropout,
    )


# model_type -> (model class, its Config from (ExperimentConfig, the shared sizes))
MODELS: dict[str, tuple[type[nn.Module], Any]] = {
    "act_rnn": (ACTRNN, _act_rnn),
    "universal_transformer": (UniversalTransformer, _ut),
}


def build_model(config: ExperimentConfig, data_meta: dict[str, Any]) -> nn.Module:
    """Instantiate the registered model for `config.model_type` with its criterion."""
    cls, model_config = MODELS[config.model_type]
    task = get_task(config.task)
    input_size, output_shape = task.io_shapes(config, data_meta)
    shared = {
        "input_kind": task.input_kind,
        "input_size": input_size,
        "output_shape": output_shape,
        "hidden_size": config.hidden_size,
        "M": config.max_ponder,
        "halt_bias": config.halt_bias,
        "vocab_size": int(data_meta.get("vocab_size", 6)),
    }
    return cls(model_config(config, shared), build_criterion(config))
