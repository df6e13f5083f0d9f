"""Backbones under the halting criteria: the mistakes of public implementations ruled out."""

import pytest
import torch

from halting.config import make_config
from halting.models import build_model
from halting.tasks import get_task
from halting.training.system import HaltingSystem, task_loss

UT_SMALL = dict(
    ut_embedding_size=8, ut_key_depth=16, ut_value_depth=16, ut_filter_size=16, ut_heads=2
)


def rnn(task="parity", **kw):
    base = dict(task=task, model_type="act_rnn", hidden_size=8, max_steps=1)
    if task == "parity":
        base["bits"] = 4
    if task == "addition":
        base.update(sequence_length=3, max_digits=2)
    base.update(kw)
    cfg = make_config(base)
    meta = {"places": 3} if task == "addition" else {"seq_len": 16, "vocab_size": 6}
    return build_model(cfg, meta)


@pytest.mark.parametrize("cell", ["gru", "lstm", "tanh_rnn"])
def test_act_with_one_step_equals_plain_cell(cell):
    torch.manual_seed(0)
    m = rnn(time_limit=1, rnn_cell_type=cell).eval()
    x = torch.tensor([[1.0, -1.0, 0.0, 1.0], [0.0, 0.0, -1.0, 1.0]])
    out = m(x)
    inp = torch.cat([x, torch.ones(2, 1)], -1)  # the first-step flag
    s = m.cell(inp, None) if cell != "lstm" else m.cell(inp)[0]
    torch.testing.assert_close(out.logits, m.head(s))
    assert out.steps.tolist() == [[1.0], [1.0]]
    torch.testing.assert_close(out.remainder, torch.ones(2, 1))


def test_halt_bias_plus_one_gives_two_steps_at_init():
    torch.manual_seed(0)
    m = rnn(time_limit=10, rnn_halt_bias=1.0).eval()
    torch.nn.init.zeros_(m.halt.weight)  # h = sigmoid(1) = 0.731: 0.731 < 0.99 <= 1.462
    out = m(torch.randn(5, 4))
    assert torch.all(out.steps == 2)
    torch.testing.assert_close(out.p[0, 0, :2], torch.tensor([0.7311, 0.2689]), atol=1e-4, rtol=0)


def test_lstm_cell_state_is_carried_across_input_steps():
    torch.manual_seed(0)
    m = rnn("addition", rnn_cell_type="lstm", halting="fixed", time_limit=1).eval()
    x = torch.randn(2, 3, 20)
    out = m(x)
    h = c = torch.zeros(2, 8)
    for t in range(3):  # fixed depth 1: one cell step per input, (h, c) carried
        h, c = m.cell(torch.cat([x[:, t], torch.ones(2, 1)], -1), (h, c))
    torch.testing.assert_close(out.logits[:, -1], m.head(h).view(2, 3, 11))
    h2 = torch.zeros(2, 8)  # resetting c at each step gives a different answer
    for t in range(3):
        h2, _ = m.cell(torch.cat([x[:, t], torch.ones(2, 1)], -1), (h2, torch.zeros(2, 8)))
    assert not torch.allclose(h, h2)


def test_ponder_cost_summed_over_time_and_padding_excluded():
    torch.manual_seed(0)
    m = rnn("addition", time_limit=5).eval()
    x = torch.randn(4, 3, 20)
    out = m(x)
    per_unit = out.steps + out.remainder  # (B, T) rho per input step
    torch.testing.assert_close(out.ponder_cost, per_unit.sum(1).mean())  # summed, not averaged
    mask = torch.tensor([[True, True, False]] * 4)
    masked = m(x, mask=mask)
    torch.testing.assert_close(masked.ponder_cost, per_unit[:, :2].sum(1).mean())
    assert torch.all(masked.steps[:, 2] == 0)


def test_ponder_loss_is_differentiable_into_halting_unit():
    sys_ = HaltingSystem(
        dict(task="parity", bits=4, hidden_size=8, max_steps=5, time_limit=5), {}, "test"
    )
    batch = {"x": torch.randn(6, 4), "y": torch.randint(0, 2, (6,))}
    out = sys_(batch, mode="train")
    assert out.ponder_cost.requires_grad
    out.ponder_cost.backward()
    assert sys_.model.halt.bias.grad is not None and sys_.model.halt.bias.grad.abs() > 0


def ut(task="maze", **kw):
    base = dict(
        task=task,
        model_type="universal_transformer",
        hidden_size=16,
        max_steps=1,
        ut_max_hops=4,
        ut_act=True,
        data_dir="unused",
        **UT_SMALL,
    )
    base.update(kw)
    return build_model(make_config(base), {"seq_len": 9, "vocab_size": 6})


@pytest.mark.parametrize("update", ["weighted", "interpolate"])
def test_ut_halted_positions_stop_accumulating(update):
    torch.manual_seed(0)
    m = ut(ut_act_update=update).eval()
    with torch.no_grad():  # position-dependent halting: make the first hop halt everything
        m.halt.bias.fill_(10.0)
    x = torch.randint(1, 5, (2, 9))
    out = m(x, record_steps=True)
    assert torch.all(out.steps == 1)
    # halted after hop 1: the output equals the hop-1 readout (weight R = 1 on s^1)
    torch.testing.assert_close(out.logits, out.step_logits[0])


def test_ut_per_position_weights_sum_to_one_and_n_le_m():
    torch.manual_seed(1)
    for halting in ("act", "pondernet"):
        m = ut(halting=halting).train()
        out = m(torch.randint(1, 5, (3, 9)))
        torch.testing.assert_close(out.p.sum(-1), torch.ones(3, 9))
        assert out.p.shape == (3, 9, 4) and torch.all(out.steps <= 4)


def test_pondernet_task_loss_is_expected_step_loss():
    torch.manual_seed(0)
    sys_ = HaltingSystem(
        dict(task="parity", bits=4, hidden_size=8, max_steps=5, time_limit=3, halting="pondernet"),
        {},
        "test",
    )
    batch = {"x": torch.randn(5, 4), "y": torch.randint(0, 2, (5,))}
    out = sys_(batch, mode="train")
    assert out.step_logits.shape == (3, 5, 2)
    parity = get_task("parity")
    per_step = torch.stack([parity.unit_loss(y, batch)[:, 0] for y in out.step_logits], -1)
    expected = (out.p[:, 0] * per_step).sum(-1).mean()
    torch.testing.assert_close(task_loss(parity, out, batch, sys_.criterion), expected)


def test_step_logits_has_the_per_step_linear_gradient():
    from halting.models.ponder import decision_logit, step_logits

    torch.manual_seed(0)
    unit = torch.nn.Linear(5, 1).double()
    inputs = [torch.randn(3, 2, 5, dtype=torch.float64, requires_grad=True) for _ in range(4)]
    values = [decision_logit(unit, x) for x in inputs]  # (3, 2) each, no gradient
    assert not any(v.requires_grad for v in values)
    fused = step_logits(values, inputs, unit)  # (3, 2, 4)
    ref = torch.stack([unit(x).squeeze(-1) for x in inputs], -1)
    torch.testing.assert_close(fused, ref)
    g = torch.randn_like(ref)
    params = [unit.weight, unit.bias, *inputs]
    for a, b in zip(torch.autograd.grad(fused, params, g), torch.autograd.grad(ref, params, g)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("model", ["act_rnn", "universal_transformer"])
def test_forward_without_backward_frees_its_graph(model):
    # A custom autograd node that saves a view of its own output keeps the whole graph alive
    # (a C++ reference cycle the Python GC cannot see): memory grew with every forward.
    import gc

    net = rnn(time_limit=6) if model == "act_rnn" else ut()
    x = torch.randn(4, 4) if model == "act_rnn" else torch.randint(1, 5, (4, 9))

    def live_tensors() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if type(o) in (torch.Tensor, torch.nn.Parameter))

    net(x, mode="train")
    before = live_tensors()
    for _ in range(3):
        net(x, mode="train")
    assert live_tensors() == before


@pytest.mark.parametrize(
    "criterion,mode,kept",
    [("act", "eval", 4), ("act", "max", 1), ("pondernet", "eval", 4), ("fixed", "eval", 1)],
)
def test_ponder_loop_keeps_only_the_states_finish_reads(criterion, mode, kept):
    # fixed depth and max mode read out s^K only: holding every state costs K x the memory
    from halting.criteria import ACT, FixedDepth, PonderNet
    from halting.models.ponder import PonderLoop

    crit = {"act": ACT(), "pondernet": PonderNet(eval_halting="median"), "fixed": FixedDepth()}[
        criterion
    ]
    unit = None if criterion == "fixed" else torch.nn.Linear(3, 1)
    if unit is not None:
        torch.nn.init.constant_(unit.weight, 0.0)
        torch.nn.init.constant_(unit.bias, -10.0)  # h ~ 0: nothing halts before M = 4
    loop = PonderLoop(crit, unit, torch.ones(2, dtype=torch.bool), mode, 4)
    for n in range(1, 5):
        s = torch.full((2, 3), float(n))
        if not loop.step(n, s, None if unit is None else s):
            break
    assert n == 4 and len(loop.states) == kept and loop.states[-1][0, 0] == 4
    assert loop.finish().state.shape == (2, 3)


@pytest.mark.parametrize("backbone", ["act_rnn", "universal_transformer"])
def test_addition_padding_takes_no_steps_and_no_cost(backbone):
    """A 2-number sequence padded to T = 4 (Graves' distribution) ponders and pays as the same
    2 numbers alone: padding comes last, the RNN and the causal UT never read it."""
    import numpy as np

    from halting.data.toy import addition_batch

    torch.manual_seed(0)
    if backbone == "act_rnn":
        model = rnn("addition", sequence_length=4, max_digits=2, time_limit=5)
    else:
        cfg = make_config(
            dict(
                task="addition",
                model_type="universal_transformer",
                ut_act=True,
                hidden_size=16,
                ut_max_hops=4,
                sequence_length=4,
                max_digits=2,
                max_steps=1,
                **UT_SMALL,
            )
        )
        model = build_model(cfg, {"places": 3})
    model.eval()
    batch = addition_batch(0, 0, 64, 4, 2, distribution="graves")
    b = int(np.argmax(batch["present"].sum(1) == 2))  # an example of 2 numbers
    x = torch.from_numpy(batch["x"][b : b + 1])
    present = torch.from_numpy(batch["present"][b : b + 1])
    with torch.no_grad():
        padded = model(x, mask=present, mode="eval")
        alone = model(x[:, :2], mode="eval")
    assert padded.steps[0, 2:].eq(0).all() and padded.steps[0, :2].ge(1).all()
    torch.testing.assert_close(padded.steps[:, :2], alone.steps)
    torch.testing.assert_close(padded.ponder_cost, alone.ponder_cost)  # padding pays nothing
    torch.testing.assert_close(padded.logits[:, :2], alone.logits)
