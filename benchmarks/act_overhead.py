"""ACT overhead: a train step with ACT vs the same backbone at fixed depth K = the steps ACT ran.

Both are measured in this one run, interleaved, at several sizes; the ratio is what counts
(target <= 1.10x). Also the Universal Transformer train step's achieved FLOP/s against a large
matmul's FLOP/s on the same device.

    python benchmarks/act_overhead.py [--device cpu|cuda] [--repeats 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from halting.tasks import get_task
from halting.training.system import HaltingSystem, batch_metrics

TARGET = 1.10  # ACT step time / fixed-depth step time


def make_system(base: dict, **kw) -> HaltingSystem:
    return HaltingSystem({**base, **kw}, {"seq_len": 100, "vocab_size": 6, "places": 6}, "bench")


def batch_for(task: str, B: int, base: dict, device: str) -> dict:
    g = torch.Generator().manual_seed(0)
    if get_task(task).input_kind == "vector":
        x = torch.randint(-1, 2, (B, base["bits"]), generator=g).float()
        return {"x": x.to(device), "y": torch.randint(0, 2, (B,), generator=g).to(device)}
    L = 100
    return {
        "inputs": torch.randint(1, 5, (B, L), generator=g).to(device),
        "labels": torch.randint(1, 6, (B, L), generator=g).to(device),
    }


def make_optimizer(system: HaltingSystem) -> torch.optim.Optimizer:
    """The system's own AdamW with lr 0: Adam's arithmetic runs in full, the weights (and so
    the steps ACT takes) stay fixed across repeats."""
    opt = system.configure_optimizers()["optimizer"]
    for group in opt.param_groups:
        group["lr"] = 0.0
    return opt


def step_time(system: HaltingSystem, batch: dict, opt, device: str) -> float:
    """One train step as `HaltingSystem.training_step` computes it (forward, losses, batch
    metrics), then backward and the optimiser step; logging is left out."""
    t0 = time.perf_counter()
    out = system(batch, mode="train")
    loss = system._losses(batch, out)["loss_total"]
    batch_metrics(system.task, out, batch)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def act_vs_fixed(base: dict, B: int, repeats: int, device: str) -> tuple[float, float, int]:
    """Median step time of ACT and of fixed depth K = max steps ACT ran in the batch."""
    torch.manual_seed(0)
    act = make_system(base).to(device)
    batch = batch_for(base["task"], B, base, device)
    with torch.no_grad():
        K = int(act(batch, mode="train").steps.max().item())
    key = "time_limit" if base["model_type"] == "act_rnn" else "ut_max_hops"
    fixed_kw = {"halting": "fixed", key: K}
    if base["model_type"] == "universal_transformer":
        fixed_kw.update(ut_act=False)
    fixed_base = {
        k: v
        for k, v in base.items()
        if k not in ("time_penalty", "rnn_halt_bias", "ut_act_loss_weight", "ut_halt_bias")
    }
    fixed = make_system(fixed_base, **fixed_kw).to(device)
    opts = [make_optimizer(m) for m in (act, fixed)]
    ta, tf = [], []
    for i in range(repeats + 3):
        a = step_time(act, batch, opts[0], device)
        f = step_time(fixed, batch, opts[1], device)
        if i >= 3:  # warm-up
            ta.append(a)
            tf.append(f)
    return statistics.median(ta), statistics.median(tf), K


def matmul_flops(device: str, n: int = 2048) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(2):
        a @ b
    t0 = time.perf_counter()
    reps = 5
    for _ in range(reps):
        a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def ut_flops(base: dict, B: int, device: str) -> float:
    """Achieved FLOP/s of a UT train step (FLOPs counted by torch's FlopCounterMode)."""
    from torch.utils.flop_counter import FlopCounterMode

    system = make_system(base).to(device)
    batch = batch_for(base["task"], B, base, device)
    opt = make_optimizer(system)
    with FlopCounterMode(display=False) as counter:
        step_time(system, batch, opt, device)
    times = [step_time(system, batch, opt, device) for _ in range(5)]
    return counter.get_total_flops() / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    common = dict(max_steps=1)
    cases = [
        (
            "ACT-RNN gru H=128 parity16",
            dict(task="parity", bits=16, model_type="act_rnn", hidden_size=128, time_limit=20),
            128,
        ),
        (
            "ACT-RNN gru H=512 parity16",
            dict(task="parity", bits=16, model_type="act_rnn", hidden_size=512, time_limit=20),
            128,
        ),
        (
            "ACT-RNN gru H=128 parity16 K~9",
            dict(
                task="parity",
                bits=16,
                model_type="act_rnn",
                hidden_size=128,
                time_limit=20,
                rnn_halt_bias=-2.0,
            ),
            128,
        ),
        (
            "ACT-RNN gru H=512 parity16 K~9",
            dict(
                task="parity",
                bits=16,
                model_type="act_rnn",
                hidden_size=512,
                time_limit=20,
                rnn_halt_bias=-2.0,
            ),
            128,
        ),
        (
            "ACT-RNN gru H=256 maze10x10",
            dict(task="maze", data_dir="-", model_type="act_rnn", hidden_size=256, time_limit=16),
            64,
        ),
        (
            "UT H=128 maze10x10",
            dict(
                task="maze",
                data_dir="-",
                model_type="universal_transformer",
                hidden_size=128,
                ut_key_depth=128,
                ut_value_depth=128,
                ut_filter_size=256,
                ut_max_hops=8,
                ut_act=True,
            ),
            32,
        ),
        (
            "UT H=128 maze10x10 K~6",
            dict(
                task="maze",
                data_dir="-",
                model_type="universal_transformer",
                hidden_size=128,
                ut_key_depth=128,
                ut_value_depth=128,
                ut_filter_size=256,
                ut_max_hops=8,
                ut_act=True,
                ut_halt_bias=-1.5,
            ),
            32,
        ),
    ]
    print(f"device: {args.device}, threads: {torch.get_num_threads()}")
    print(f"{'case':<30} {'K':>3} {'ACT ms':>9} {'fixed ms':>9} {'extra ms':>9} {'ratio':>6}")
    over = []
    for name, cfg, B in cases:
        a, f, K = act_vs_fixed({**cfg, **common}, B, args.repeats, args.device)
        print(
            f"{name:<30} {K:>3} {a * 1e3:>9.2f} {f * 1e3:>9.2f} {(a - f) * 1e3:>9.2f} {a / f:>6.2f}"
        )
        if a / f > TARGET:
            over.append(name)
    print(f"above the {TARGET:.2f}x target: {', '.join(over) or 'none'}")
    ut_case = dict(
        task="maze",
        data_dir="-",
        model_type="universal_transformer",
        hidden_size=256,
        ut_key_depth=256,
        ut_value_depth=256,
        ut_filter_size=512,
        ut_max_hops=6,
        ut_act=True,
        max_steps=1,
    )
    achieved, peak = ut_flops(ut_case, 64, args.device), matmul_flops(args.device)
    print(
        f"UT train step: {achieved / 1e9:.1f} GFLOP/s; {peak / 1e9:.1f} GFLOP/s for a 2048^2 "
        f"matmul; ratio {achieved / peak:.2f}"
    )


if __name__ == "__main__":
    main()
