"""The halting maths against hand-computed cases (Graves 2016; Banino et al. 2021)."""

import math

import pytest
import torch

from halting.criteria import ACT, FixedDepth, PonderNet, kl_to_geometric, mix, truncated_geometric


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def run(criterion, hs, limit, mode="train", mask=None, states=None):
    """Feed halting probabilities hs[n] (each (U,)) through a criterion's loop as a backbone
    does; return the mean-field weights of the steps run (U, K), finish's dict and the
    mean-field state of `states` (default: one-hot vectors, which read the weights out)."""
    mask = torch.ones(hs[0].shape, dtype=torch.bool) if mask is None else mask
    st = criterion.init_state(mask, mode)
    logits = []
    for n, h in enumerate(hs, start=1):
        logits.append(torch.logit(h) if h is not None else None)
        if not criterion.keep_going(st, logits[-1], n, limit):
            break
    K = len(logits)
    eye = [torch.eye(K)[n].expand(*mask.shape, K) for n in range(K)]  # s^n = e_n: state = w
    halt_logits = torch.stack(logits, -1) if hs[0] is not None else None
    r = criterion.finish(st, halt_logits, eye, limit)
    acc = None if states is None else criterion.finish(st, halt_logits, states[:K], limit).state
    return r.state, r, acc


def test_act_three_step_hand_example():
    # h = 0.3, 0.5, 0.4; eps 0.01: 0.3 + 0.5 = 0.8 < 0.99, 0.8 + 0.4 >= 0.99 -> N = 3,
    # R = 1 - 0.8 = 0.2, p = (0.3, 0.5, 0.2), rho = N + R = 3.2.
    hs = [torch.tensor([0.3]), torch.tensor([0.5]), torch.tensor([0.4]), torch.tensor([0.9])]
    w, r, _ = run(ACT(0.01), hs, limit=5)
    assert w.shape[-1] == 3  # stopped after the halting step
    torch.testing.assert_close(w[0], torch.tensor([0.3, 0.5, 0.2]))
    torch.testing.assert_close(r.p[0], torch.tensor([0.3, 0.5, 0.2, 0.0, 0.0]))
    assert r.steps.item() == 3
    torch.testing.assert_close(r.remainder, torch.tensor([0.2]))
    torch.testing.assert_close(r.cost, torch.tensor([3.2]))


def test_act_sum_counted_once_at_threshold():
    # 0.5 + 0.49 = 0.99 >= 1 - eps at step 2 exactly: N = 2, R = 0.5 (counting h twice would
    # halt at 1)
    w, r, _ = run(ACT(0.01), [torch.tensor([0.5]), torch.tensor([0.49])], limit=4)
    assert r.steps.item() == 2
    torch.testing.assert_close(r.p[0, :2], torch.tensor([0.5, 0.5]))
    # 0.6 alone does not halt at step 1
    _, r, _ = run(ACT(0.01), [torch.tensor([0.6]), torch.tensor([0.6])], limit=4)
    assert r.steps.item() == 2
    torch.testing.assert_close(r.remainder, torch.tensor([0.4]))


def test_act_forced_halt_at_limit_sums_to_one():
    hs = [torch.tensor([0.1, 0.2])] * 3
    w, r, _ = run(ACT(0.01), hs, limit=3)
    torch.testing.assert_close(r.p[0], torch.tensor([0.1, 0.1, 0.8]))
    torch.testing.assert_close(r.p.sum(-1), torch.ones(2))
    assert torch.all(r.steps == 3) and torch.all(r.steps <= 3)
    torch.testing.assert_close(r.cost, torch.tensor([3.8, 3.6]))


def test_act_gradient_flows_through_remainder_not_last_h():
    h = torch.tensor([0.3, 0.5, 0.4], requires_grad=True)
    act = ACT(0.01)
    st = act.init_state(torch.ones(1, dtype=torch.bool))
    logits = [torch.logit(h[n : n + 1]) for n in range(3)]
    assert [act.keep_going(st, logits[n], n + 1, 5) for n in range(3)] == [True, True, False]
    r = act.finish(st, torch.stack(logits, -1), [torch.zeros(1, 2)] * 3, 5)
    r.cost.sum().backward()  # rho = N + R = N + 1 - h1 - h2
    torch.testing.assert_close(h.grad, torch.tensor([-1.0, -1.0, 0.0]))


def test_act_halted_unit_never_changes():
    # unit 0 halts at step 1 (h = 0.995), unit 1 runs 3 steps; states differ every step
    hs = [torch.tensor([0.995, 0.2]), torch.tensor([0.7, 0.3]), torch.tensor([0.1, 0.9])]
    states = [torch.full((2, 4), float(n)) for n in (1, 2, 3)]
    w, r, acc = run(ACT(0.01), hs, limit=6, states=states)
    torch.testing.assert_close(w[0], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(acc[0], states[0][0])  # mean-field = s^1 only
    torch.testing.assert_close(acc[1], torch.full((4,), 0.2 * 1 + 0.3 * 2 + 0.5 * 3))
    assert r.steps.tolist() == [1.0, 3.0]
    assert r.halt_prob[0, 1:].abs().sum() == 0  # no halting probability after halting


def test_act_padding_units_cost_nothing():
    mask = torch.tensor([True, False])
    w, r, _ = run(ACT(0.01), [torch.tensor([0.3, 0.3])] * 4, limit=4, mask=mask)
    assert r.steps.tolist() == [4.0, 0.0]
    assert r.cost[1] == 0 and w[1].abs().sum() == 0


def test_act_max_mode_reads_out_last_step_but_reports_learned_n():
    hs = [torch.tensor([0.995])] + [torch.tensor([0.5])] * 3
    w, r, _ = run(ACT(0.01), hs, limit=4, mode="max")
    torch.testing.assert_close(w[0], torch.tensor([0.0, 0.0, 0.0, 1.0]))
    assert r.steps.item() == 4
    torch.testing.assert_close(r.cost, torch.tensor([1.0 + 0.995 * 0 + 1.0]))  # N=1, R=1


def test_pondernet_distribution_and_leftover():
    # lambda = 0.5, 0.5, (0.3 ignored at M=3): p = 0.5, 0.25, 0.25
    hs = [torch.tensor([0.5]), torch.tensor([0.5]), torch.tensor([0.3])]
    w, r, _ = run(PonderNet(lambda_p=0.5), hs, limit=3)
    torch.testing.assert_close(r.p[0], torch.tensor([0.5, 0.25, 0.25]))
    torch.testing.assert_close(w[0], torch.tensor([0.5, 0.25, 0.25]))
    torch.testing.assert_close(r.steps, torch.tensor([0.5 + 0.5 + 0.75]))  # E[n] = 1.75


def test_pondernet_kl_closed_form_and_direction():
    # q = 0.5 * 0.5^(n-1) on n = 1..3, renormalised by 0.875: (4/7, 2/7, 1/7)
    torch.testing.assert_close(truncated_geometric(0.5, 3), torch.tensor([4 / 7, 2 / 7, 1 / 7]))
    p = torch.tensor([0.5, 0.25, 0.25])
    expected = (
        0.5 * math.log(0.5 / (4 / 7))
        + 0.25 * math.log(0.25 / (2 / 7))
        + 0.25 * math.log(0.25 / (1 / 7))
    )
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
    assert r.steps.item() == 2  # cumulative p reaches 0.5 at step 2
    torch.testing.assert_close(w[0], torch.tensor([0.0, 1.0]))
    torch.manual_seed(0)
    counts = torch.zeros(3)
    for _ in range(2000):
        _, r, _ = run(PonderNet(0.2, "sample"), hs, limit=3, mode="eval")
        counts[int(r.steps.item()) - 1] += 1
    torch.testing.assert_close(counts / 2000, torch.tensor([0.3, 0.4, 0.3]), atol=0.04, rtol=0)


def test_fixed_depth_one_hot_at_k():
    w, r, _ = run(FixedDepth(), [None] * 4, limit=4, mask=torch.ones(1, dtype=torch.bool))
    torch.testing.assert_close(r.p[0], torch.tensor([0.0, 0.0, 0.0, 1.0]))
    assert r.steps.item() == 4 and r.cost.item() == 0


def test_interpolate_update_is_t2t_basic():
    # acc_1 = 0.25 * 2 = 0.5; acc_2 = 0.5 * 4 + 0.5 * acc_1 = 2.25
    states = [torch.tensor([[2.0]]), torch.tensor([[4.0]])]
    acc = mix(states, torch.tensor([[0.25, 0.5]]), "interpolate")
    torch.testing.assert_close(acc, torch.tensor([[0.5 * 4 + 0.5 * 0.5]]))
    acc2 = mix(states + [torch.tensor([[100.0]])], torch.tensor([[0.25, 0.5, 0.0]]), "interpolate")
    torch.testing.assert_close(acc2, acc)  # a halted position (w = 0) is unchanged
    # w = 1 forgets everything before (cumprod through a zero factor)
    acc3 = mix(states, torch.tensor([[0.25, 1.0]]), "interpolate")
    torch.testing.assert_close(acc3, torch.tensor([[4.0]]))


def test_weighted_mix_is_graves_mean_field_sum():
    # U = (2,), states (U, 3): sum_n w_n s^n per unit; None reads out the last step
    states = [torch.full((2, 3), 1.0), torch.full((2, 3), 2.0), torch.full((2, 3), 3.0)]
    w = torch.tensor([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    torch.testing.assert_close(mix(states, w), torch.tensor([[2.3] * 3, [1.0] * 3]))
    assert mix(states, None) is states[-1]
    with pytest.raises(ValueError, match="update"):
        mix(states, w, "average")


def test_pondernet_gradient_stays_finite_when_lambda_saturates():
    # lambda_1 = sigmoid(200) = 1 in float32: p_2, p_3 underflow to 0, where d(p log p)/dp = -inf.
    # Training hit this as a NaN gradient (step 1236 of a 6-bit parity run) before log space.
    logits = torch.tensor([[200.0], [3.0], [-1.0]], requires_grad=True)
    crit = PonderNet(lambda_p=0.2)
    st = crit.init_state(torch.ones(1, dtype=torch.bool))
    assert [crit.keep_going(st, logits[n], n + 1, 3) for n in range(3)] == [True, True, False]
    r = crit.finish(st, logits.T, [torch.zeros(1, 2)] * 3, 3)
    assert r.p[0, 1] == 0 and torch.isfinite(r.cost).all()
    r.cost.sum().backward()
    assert torch.isfinite(logits.grad).all()
    q = truncated_geometric(0.2, 3)
    assert r.cost.item() == pytest.approx(-math.log(q[0].item()), rel=1e-5)  # KL(delta_1 || q)


def _fused_and_reference(logits, N, maskf, states):
    """The fused ACT node and the same maths in plain autograd ops (act_weights + mix)."""
    from halting.criteria.act import _ACTMeanField, act_weights

    fused = _ACTMeanField.apply(logits, N, maskf, *states)[:3]
    p, R = act_weights(logits, N, maskf)[:2]
    return fused, (mix(states, p), p, N + R)


def test_fused_act_mean_field_matches_autograd_reference():
    # U = (4,): units halting at N = 1, 2, 4 (forced at M = K) and one padding unit; K = 4
    torch.manual_seed(0)
    logits = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    states = [torch.randn(4, 3, dtype=torch.float64, requires_grad=True) for _ in range(4)]
    N = torch.tensor([1.0, 2.0, 4.0, 0.0], dtype=torch.float64)
    maskf = torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    fused, ref = _fused_and_reference(logits, N, maskf, states)
    upstream = [torch.randn_like(t) for t in ref]
    for a, b in zip(fused, ref):  # mean-field state, p, rho
        torch.testing.assert_close(a, b)
    grads = [torch.autograd.grad(outs, [logits, *states], upstream) for outs in (fused, ref)]
    for g_fused, g_ref in zip(*grads):
        torch.testing.assert_close(g_fused, g_ref)
    assert grads[0][0][0].abs().sum() == 0  # N = 1: h^1 gets no gradient (R = 1 carries none)
    assert grads[0][0][1, 1:].abs().sum() == 0  # N = 2: nothing for h^2 and later
    assert grads[0][0][3].abs().sum() == 0 and grads[0][4][3].abs().sum() == 0  # padding


def test_fused_act_mean_field_passes_gradcheck():
    from halting.criteria.act import _ACTMeanField

    torch.manual_seed(1)
    logits = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    states = [torch.randn(3, 2, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    N = torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)
    maskf = torch.ones(3, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda lg, *s: _ACTMeanField.apply(lg, N, maskf, *s)[:3], (logits, *states)
    )


def test_act_interpolate_update_through_finish():
    # p = (0.3, 0.5, 0.2) as in the hand example; t2t's interpolation weighs step n by
    # p^n prod_{j>n} (1 - p^j): 0.3 * 0.5 * 0.8 = 0.12, 0.5 * 0.8 = 0.4, 0.2
    act = ACT(0.01)
    st = act.init_state(torch.ones(1, dtype=torch.bool))
    logits = [torch.logit(torch.tensor([h])) for h in (0.3, 0.5, 0.4)]
    assert [act.keep_going(st, lg, n, 5) for n, lg in enumerate(logits, 1)] == [True, True, False]
    eye = [torch.eye(3)[n].expand(1, 3) for n in range(3)]
    r = act.finish(st, torch.stack(logits, -1), eye, 5, update="interpolate")
    torch.testing.assert_close(r.state[0], torch.tensor([0.12, 0.4, 0.2]))
    torch.testing.assert_close(r.p[0, :3], torch.tensor([0.3, 0.5, 0.2]))  # p itself unchanged


def run_loop(criterion, lams, limit, mode="eval"):
    """Feed halting probabilities lams[n] (each (U,)) through the backbones' PonderLoop, the
    halting unit reading the logit from its input; states s^n = e_n read the weights out.
    Returns the steps run and finish's dict."""
    from halting.models.ponder import PonderLoop

    with torch.random.fork_rng():  # its initialisation draws: leave the caller's stream alone
        unit = torch.nn.Linear(1, 1)
    torch.nn.init.ones_(unit.weight)
    torch.nn.init.zeros_(unit.bias)
    loop = PonderLoop(criterion, unit, torch.ones(lams[0].shape, dtype=torch.bool), mode, limit)
    for n, lam in enumerate(lams, start=1):
        state = torch.eye(limit)[n - 1].expand(*lam.shape, limit)
        if not loop.step(n, state, torch.logit(lam).unsqueeze(-1)):
            break
    return n, loop.finish()


def test_pondernet_eval_numbers_do_not_depend_on_the_batch():
    # unit A: lambda = 0.6, 0.5 (then lambda_M = 1 at M = 3): p = (0.6, 0.2, 0.2), the median
    # halts at step 1; E[n] = 0.6 + 0.4 + 0.6 = 1.6, KL to q = (4/7, 2/7, 1/7) (lambda_p 0.5).
    # Unit B: lambda = 0.1, 0.1: p = (0.1, 0.09, 0.81), halts at step 3. Stopping the loop at
    # the batch's last halting step gave A alone p = (1, 0, 0): E[n] 1, KL -log(4/7).
    fast, slow = [0.6, 0.5, 0.9], [0.1, 0.1, 0.5]
    kl = (
        0.6 * math.log(0.6 / (4 / 7))
        + 0.2 * math.log(0.2 / (2 / 7))
        + 0.2 * math.log(0.2 / (1 / 7))
    )
    alone = run_loop(PonderNet(0.5, "median"), [torch.tensor([a]) for a in fast], limit=3)
    pair = run_loop(
        PonderNet(0.5, "median"), [torch.tensor([a, b]) for a, b in zip(fast, slow)], limit=3
    )
    for K, r in (alone, pair):
        assert K == 3  # the halting unit runs to M, also after every unit has halted
        torch.testing.assert_close(r.p[0], torch.tensor([0.6, 0.2, 0.2]))
        assert (r.p[0] * torch.arange(1.0, 4.0)).sum().item() == pytest.approx(1.6, rel=1e-6)
        assert r.cost[0].item() == pytest.approx(kl, rel=1e-4)
        assert r.steps[0].item() == 1  # ... but reads out A's own halting step
        torch.testing.assert_close(r.state[0], torch.tensor([1.0, 0.0, 0.0]))
    assert pair[1].steps.tolist() == [1.0, 3.0]
    torch.testing.assert_close(pair[1].p[1], torch.tensor([0.1, 0.09, 0.81]))
    torch.testing.assert_close(pair[1].state[1], torch.tensor([0.0, 0.0, 1.0]))


def test_pondernet_sampled_halting_draws_only_until_every_unit_halts():
    # Running on to M draws nothing more: validation leaves training's RNG stream as it was.
    lams = [torch.full((4,), 0.999)] * 5
    torch.manual_seed(0)
    K, r = run_loop(PonderNet(0.2, "sample"), lams, limit=5)
    after_loop = torch.rand(1)
    torch.manual_seed(0)
    crit = PonderNet(0.2, "sample")
    st = crit.init_state(torch.ones(4, dtype=torch.bool), "eval")
    n = 1
    while crit.keep_going(st, torch.logit(lams[n - 1]), n, 5):
        n += 1
    assert K == 5 and torch.equal(r.steps, st.halt_step)
    assert torch.equal(torch.rand(1), after_loop)
