"""The halting maths against hand-computed cases (Graves 2016; Banino et al. 2021)."""

import math

import pytest
import torch

from halting.criteria import (ACT, FixedDepth, PonderNet, accumulate, kl_to_geometric,
                              truncated_geometric)


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def run(criterion, hs, limit, mode="train", mask=None, states=None):
    """Feed halting probabilities hs[n] (each (U,)) through a criterion; return weights + finish."""
    mask = torch.ones(hs[0].shape, dtype=torch.bool) if mask is None else mask
    st = criterion.init_state(mask, mode)
    ws, acc = [], None
    for n, h in enumerate(hs, start=1):
        w, st = criterion.step(st, torch.logit(h) if h is not None else None, n, limit)
        ws.append(w)
        if states is not None:
            acc = accumulate(acc, states[n - 1], w)
        if not bool(criterion.running(st).any()):
            break
    return torch.stack(ws, -1), criterion.finish(st, limit), acc


def test_act_three_step_hand_example():
    # h = 0.3, 0.5, 0.4; eps 0.01: 0.3 + 0.5 = 0.8 < 0.99, 0.8 + 0.4 >= 0.99 -> N = 3,
    # R = 1 - 0.8 = 0.2, p = (0.3, 0.5, 0.2), rho = N + R = 3.2.
    hs = [torch.tensor([0.3]), torch.tensor([0.5]), torch.tensor([0.4]), torch.tensor([0.9])]
    w, r, _ = run(ACT(0.01), hs, limit=5)
    assert w.shape[-1] == 3  # stopped after the halting step
    torch.testing.assert_close(w[0], torch.tensor([0.3, 0.5, 0.2]))
    torch.testing.assert_close(r["p"][0], torch.tensor([0.3, 0.5, 0.2, 0.0, 0.0]))
    assert r["steps"].item() == 3
    torch.testing.assert_close(r["remainder"], torch.tensor([0.2]))
    torch.testing.assert_close(r["cost"], torch.tensor([3.2]))


def test_act_sum_counted_once_at_threshold():
    # 0.5 + 0.49 = 0.99 >= 1 - eps at step 2 exactly: N = 2, R = 0.5 (counting h twice would halt at 1)
    w, r, _ = run(ACT(0.01), [torch.tensor([0.5]), torch.tensor([0.49])], limit=4)
    assert r["steps"].item() == 2
    torch.testing.assert_close(r["p"][0, :2], torch.tensor([0.5, 0.5]))
    # 0.6 alone does not halt at step 1
    _, r, _ = run(ACT(0.01), [torch.tensor([0.6]), torch.tensor([0.6])], limit=4)
    assert r["steps"].item() == 2
    torch.testing.assert_close(r["remainder"], torch.tensor([0.4]))


def test_act_forced_halt_at_limit_sums_to_one():
    hs = [torch.tensor([0.1, 0.2])] * 3
    w, r, _ = run(ACT(0.01), hs, limit=3)
    torch.testing.assert_close(r["p"][0], torch.tensor([0.1, 0.1, 0.8]))
    torch.testing.assert_close(r["p"].sum(-1), torch.ones(2))
    assert torch.all(r["steps"] == 3) and torch.all(r["steps"] <= 3)
    torch.testing.assert_close(r["cost"], torch.tensor([3.8, 3.6]))


def test_act_gradient_flows_through_remainder_not_last_h():
    h = torch.tensor([0.3, 0.5, 0.4], requires_grad=True)
    st = ACT(0.01).init_state(torch.ones(1, dtype=torch.bool))
    act = ACT(0.01)
    for n in range(3):
        _, st = act.step(st, torch.logit(h[n : n + 1]), n + 1, 5)
    r = act.finish(st, 5)
    r["cost"].sum().backward()  # rho = N + R = N + 1 - h1 - h2
    torch.testing.assert_close(h.grad, torch.tensor([-1.0, -1.0, 0.0]))


def test_act_halted_unit_never_changes():
    # unit 0 halts at step 1 (h = 0.995), unit 1 runs 3 steps; states differ every step
    hs = [torch.tensor([0.995, 0.2]), torch.tensor([0.7, 0.3]), torch.tensor([0.1, 0.9])]
    states = [torch.full((2, 4), float(n)) for n in (1, 2, 3)]
    w, r, acc = run(ACT(0.01), hs, limit=6, states=states)
    torch.testing.assert_close(w[0], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(acc[0], states[0][0])  # mean-field = s^1 only
    torch.testing.assert_close(acc[1], torch.full((4,), 0.2 * 1 + 0.3 * 2 + 0.5 * 3))
    assert r["steps"].tolist() == [1.0, 3.0]
    assert r["halt_prob"][0, 1:].abs().sum() == 0  # no halting probability after halting


def test_act_padding_units_cost_nothing():
    mask = torch.tensor([True, False])
    w, r, _ = run(ACT(0.01), [torch.tensor([0.3, 0.3])] * 4, limit=4, mask=mask)
    assert r["steps"].tolist() == [4.0, 0.0]
    assert r["cost"][1] == 0 and w[1].abs().sum() == 0


def test_act_max_mode_reads_out_last_step_but_reports_learned_n():
    hs = [torch.tensor([0.995])] + [torch.tensor([0.5])] * 3
    w, r, _ = run(ACT(0.01), hs, limit=4, mode="max")
    torch.testing.assert_close(w[0], torch.tensor([0.0, 0.0, 0.0, 1.0]))
    assert r["steps"].item() == 4
    torch.testing.assert_close(r["cost"], torch.tensor([1.0 + 0.995 * 0 + 1.0]))  # N=1, R=1


def test_pondernet_distribution_and_leftover():
    # lambda = 0.5, 0.5, (0.3 ignored at M=3): p = 0.5, 0.25, 0.25
    hs = [torch.tensor([0.5]), torch.tensor([0.5]), torch.tensor([0.3])]
    w, r, _ = run(PonderNet(lambda_p=0.5), hs, limit=3)
    torch.testing.assert_close(r["p"][0], torch.tensor([0.5, 0.25, 0.25]))
    torch.testing.assert_close(w[0], torch.tensor([0.5, 0.25, 0.25]))
    torch.testing.assert_close(r["steps"], torch.tensor([0.5 + 0.5 + 0.75]))  # E[n] = 1.75


def test_pondernet_kl_closed_form_and_direction():
    # q = 0.5 * 0.5^(n-1) on n = 1..3, renormalised by 0.875: (4/7, 2/7, 1/7)
    torch.testing.assert_close(truncated_geometric(0.5, 3), torch.tensor([4 / 7, 2 / 7, 1 / 7]))
    p = torch.tensor([0.5, 0.25, 0.25])
    expected = 0.5 * math.log(0.5 / (4 / 7)) + 0.25 * math.log(0.25 / (2 / 7)) + 0.25 * math.log(0.25 / (1 / 7))
    assert kl_to_geometric(p, 0.5).item() == pytest.approx(expected, rel=1e-5)
    q = truncated_geometric(0.5, 3)
    reverse = (q * (q / p).log()).sum().item()  # KL(q || p): what kl_div(log p, q) computes
    assert abs(reverse - expected) > 1e-3
    # p = q has zero divergence; zero entries of p contribute nothing
    assert kl_to_geometric(q, 0.5).item() == pytest.approx(0.0, abs=1e-7)
    assert torch.isfinite(kl_to_geometric(torch.tensor([1.0, 0.0, 0.0]), 0.5))


def test_pondernet_median_and_sampled_halting():
    hs = [torch.tensor([0.3]), torch.tensor([0.4 / 0.7]), torch.tensor([0.5])]  # p = .3, .4, .3
    w, r, _ = run(PonderNet(0.2, "median"), hs, limit=3, mode="eval")
    assert r["steps"].item() == 2  # cumulative p reaches 0.5 at step 2
    torch.testing.assert_close(w[0], torch.tensor([0.0, 1.0]))
    torch.manual_seed(0)
    counts = torch.zeros(3)
    for _ in range(2000):
        _, r, _ = run(PonderNet(0.2, "sample"), hs, limit=3, mode="eval")
        counts[int(r["steps"].item()) - 1] += 1
    torch.testing.assert_close(counts / 2000, torch.tensor([0.3, 0.4, 0.3]), atol=0.04, rtol=0)


def test_fixed_depth_one_hot_at_k():
    w, r, _ = run(FixedDepth(), [None] * 4, limit=4, mask=torch.ones(1, dtype=torch.bool))
    torch.testing.assert_close(r["p"][0], torch.tensor([0.0, 0.0, 0.0, 1.0]))
    assert r["steps"].item() == 4 and r["cost"].item() == 0


def test_interpolate_update_is_t2t_basic():
    acc = accumulate(None, torch.tensor([[2.0]]), torch.tensor([0.25]), "interpolate")
    acc = accumulate(acc, torch.tensor([[4.0]]), torch.tensor([0.5]), "interpolate")
    torch.testing.assert_close(acc, torch.tensor([[0.5 * 4 + 0.5 * 0.5]]))
    acc2 = accumulate(acc, torch.tensor([[100.0]]), torch.tensor([0.0]), "interpolate")
    torch.testing.assert_close(acc2, acc)  # a halted position (w = 0) is unchanged


def test_pondernet_gradient_stays_finite_when_lambda_saturates():
    # lambda_1 = sigmoid(200) = 1 in float32: p_2, p_3 underflow to 0, where d(p log p)/dp = -inf.
    # Training hit this as a NaN gradient (step 1236 of a 6-bit parity run) before log space.
    logits = torch.tensor([[200.0], [3.0], [-1.0]], requires_grad=True)
    crit = PonderNet(lambda_p=0.2)
    st = crit.init_state(torch.ones(1, dtype=torch.bool))
    for n in range(3):
        _, st = crit.step(st, logits[n], n + 1, 3)
    r = crit.finish(st, 3)
    assert r["p"][0, 1] == 0 and torch.isfinite(r["cost"]).all()
    r["cost"].sum().backward()
    assert torch.isfinite(logits.grad).all()
    q = truncated_geometric(0.2, 3)
    assert r["cost"].item() == pytest.approx(-math.log(q[0].item()), rel=1e-5)  # KL(delta_1 || q)
