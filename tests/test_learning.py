"""Learning: seeded CPU runs that show ACT solving 6-bit parity where fixed depth 1 cannot.

Entries at random positions (the runbook code's prefix layout is solvable without pondering).
Reference (a minimal faithful ACT, tanh RNN 128, lr 1e-3, batch 128, tau 1e-3): 100% after ~5k
steps.
"""

import pytest

from halting.training.train import train

PARITY6 = dict(
    task="parity",
    bits=6,
    hidden_size=128,
    rnn_cell_type="tanh_rnn",
    time_limit=20,
    learning_rate=1e-3,
    batch_size=128,
    val_size=1000,
    seed=0,
    grad_clip=1.0,
)
RUN = dict(progress_bar=False, log_every_n_steps=500, save_every_n_steps=None)
STEPS = 5000  # measured (seeds 0, 1): 87-95% at 3.3k steps, 100% from 4.2k


@pytest.fixture(scope="module")
def act_run(tmp_path_factory):
    cfg = dict(PARITY6, halting="act", time_penalty=1e-3, max_steps=STEPS)
    return train(cfg, run_dir=tmp_path_factory.mktemp("act"), val_every_n_steps=STEPS, **RUN)


@pytest.mark.slow
def test_act_rnn_solves_6bit_parity(act_run):
    assert act_run["val/accuracy"] >= 0.99
    assert act_run["val/steps"] > 2.0  # it learned to ponder beyond the initial N = 2


@pytest.mark.slow
def test_fixed_depth_one_stays_near_chance(act_run, tmp_path):
    cfg = dict(PARITY6, halting="fixed", time_limit=1, max_steps=STEPS)
    fixed = train(cfg, run_dir=tmp_path, val_every_n_steps=STEPS, **RUN)
    assert fixed["val/accuracy"] < 0.75 < act_run["val/accuracy"]


@pytest.mark.slow
def test_universal_transformer_with_act_learns_6bit_parity(tmp_path):
    cfg = dict(
        task="parity",
        bits=6,
        model_type="universal_transformer",
        ut_act=True,
        hidden_size=32,
        ut_embedding_size=16,
        ut_heads=4,
        ut_key_depth=32,
        ut_value_depth=32,
        ut_filter_size=64,
        ut_max_hops=6,
        ut_act_loss_weight=1e-3,
        learning_rate=2e-3,
        grad_clip=1.0,
        batch_size=128,
        val_size=1000,
        seed=0,
        max_steps=1500,
    )
    metrics = train(cfg, run_dir=tmp_path, val_every_n_steps=1500, **RUN)
    assert metrics["val/accuracy"] >= 0.99  # measured (seeds 0, 1): 99.7% at 330, 100% from 665
