"""The experiment config: every validation branch names the key and what was expected."""

from dataclasses import fields

import pytest

from halting.config import ExperimentConfig, config_diff, config_hash, field_docs, make_config

PARITY = {"task": "parity", "max_steps": 10}


@pytest.mark.parametrize(
    "values,message",
    [
        ({**PARITY, "hiden_size": 8}, "unknown key(s) hiden_size"),
        ({**PARITY, "ut_heads": 8}, "ut_heads do(es) not apply to task=parity"),
        ({**PARITY, "task": "sudoku"}, "'task' must be one of maze, parity, addition"),
        ({**PARITY, "bits": 0}, "'bits' must be >= 1"),
        ({**PARITY, "halting": "pondernet", "lambda_p": 1.5}, "'lambda_p' must be in (0, 1)"),
        ({"task": "maze", "max_steps": 1}, "'data_dir' is required for task 'maze'"),
        ({**PARITY, "model_type": "universal_transformer", "halting": "act"}, "set ut_act: true"),
        (
            {
                "task": "maze",
                "data_dir": "d",
                "max_steps": 1,
                "rnn_encoder": "conv",
                "rnn_cell_type": "lstm",
            },
            "set rnn_cell_type: gru",
        ),
        ({"task": "parity"}, "set max_epochs or max_steps"),
        ({**PARITY, "lr_warmup_epochs": 2}, "lr_warmup_epochs do(es) not apply"),
        (
            {
                **PARITY,
                "model_type": "universal_transformer",
                "ut_act": True,
                "halting": "pondernet",
                "ut_act_update": "interpolate",
            },
            "ut_act_update do(es) not apply",
        ),
    ],
)
def test_bad_configs_name_the_key(values, message):
    with pytest.raises(ValueError) as err:
        make_config(values, source="experiment x")
    assert message in str(err.value) and "experiment x" in str(err.value)


def test_an_inapplicable_key_at_its_default_is_accepted():
    assert make_config({**PARITY, "ut_heads": 4}).task == "parity"  # 4 is the default


@pytest.mark.parametrize(
    "values,criterion,max_ponder,tau",
    [
        ({**PARITY, "time_penalty": 0.01}, "act", 16, 0.01),
        ({**PARITY, "halting": "fixed", "time_limit": 3}, "fixed", 3, 0.0),
        ({**PARITY, "model_type": "universal_transformer", "halting": "fixed"}, "fixed", 6, 0.0),
        (
            {
                **PARITY,
                "model_type": "universal_transformer",
                "ut_act": True,
                "ut_act_loss_weight": 0.1,
            },
            "act",
            6,
            0.1,
        ),
    ],
)
def test_derived_properties(values, criterion, max_ponder, tau):
    c = make_config(values)
    assert (c.criterion, c.max_ponder, c.tau) == (criterion, max_ponder, tau)


def test_digest_is_the_canonical_hash_and_diff_names_keys():
    a, b = make_config(PARITY), make_config({**PARITY, "seed": 3})
    assert a.digest() == config_hash(a.to_dict()) == make_config(dict(PARITY)).digest()
    assert a.digest() != b.digest()
    assert config_diff(a.to_dict(), b.to_dict()) == ["seed: 0 -> 3"]


CHOICE_FIELDS = {
    "task",
    "model_type",
    "halting",
    "parity_layout",
    "rnn_cell_type",
    "rnn_encoder",
    "ut_act_update",
    "pondernet_eval",
    "lr_schedule",
    "addition_distribution",
}


def test_every_field_has_a_comment_and_the_choices_are_those_validated():
    docs = field_docs()
    assert list(docs) == [f.name for f in fields(ExperimentConfig)]
    assert not [name for name, (doc, _) in docs.items() if len(doc) < 10]  # none missing
    assert {name for name, (_, choices) in docs.items() if choices} == CHOICE_FIELDS
    assert docs["pondernet_eval"] == (
        "PonderNet evaluation halting: sample | median",
        ("sample", "median"),
    )
    for name in CHOICE_FIELDS:
        doc, choices = docs[name]
        assert all(choice in doc for choice in choices), (name, doc)  # each one explained
        with pytest.raises(ValueError, match=f"'{name}' must be one of {', '.join(choices)};"):
            make_config({**PARITY, name: "nope"})
