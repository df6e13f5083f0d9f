"""The parity and addition pages: an input typed or drawn at random, the model's answer and its
halting per ponder step, and accuracy and ponder steps by difficulty over a random batch."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import pandas as pd
import streamlit as st

from halting.data import toy
from halting.viewer import images, toy_inputs, traces
from halting.viewer.widgets import badge, chart, halting_caption, halting_chart, run_seed

# What scores a random batch by difficulty: (model, config, size, seed, mode) -> table.
Score = Callable[..., pd.DataFrame]


@st.cache_data(max_entries=16, show_spinner="Scoring a random batch ...")
def by_difficulty(
    _model, model_key: tuple, _score: Score, config: dict, size: int, seed: int, mode: str
) -> pd.DataFrame:
    """`_score` (traces.parity_by_difficulty or addition_by_difficulty) is not hashed: the
    checkpoint in `model_key` fixes the task, and so which one it is."""
    return _score(_model, config, size, seed, mode)


def next_draw() -> int:
    """The seed of the next random input: a count of the draws in this session."""
    draw = st.session_state.get("draws", 0) + 1
    st.session_state["draws"] = draw
    return draw


def new_bits(key: str, config: dict, k: int) -> None:
    """Button callback: a fresh random parity input with `k` non-zero entries in the editor
    `key`."""
    layout = config.get("parity_layout", "random")
    draw = next_draw()
    x = toy.parity_batch(draw, 0, 1, int(config["bits"]), layout, k_min=k, k_max=k)["x"][0]
    st.session_state[key] = toy_inputs.format_bits(x)


def new_numbers(key: str, config: dict) -> None:
    """Button callback: fresh random addition numbers in the editor `key`."""
    draw = next_draw()
    b = toy.addition_batch(draw, 0, 1, int(config["sequence_length"]), int(config["max_digits"]))
    numbers = toy_inputs.decode_numbers(b["x"][0], b["digits"][0])
    st.session_state[key] = " ".join(str(v) for v in numbers)


def parity_page(
    model, info: dict, model_key: tuple, mode: str, defaults: argparse.Namespace
) -> None:
    config = info["config"]
    bits = int(config["bits"])
    key = f"bits:{model_key[0]}"
    if key not in st.session_state:
        new_bits(key, config, max(1, bits // 2))
    left, mid, right = st.columns([4, 1, 1], vertical_alignment="bottom")
    text = left.text_input(
        f"Input: {bits} entries from + - 0",
        key=key,
        help="Characters + - 0 (or 1 for +1), or numbers -1 0 1 separated by "
        "spaces; shorter inputs are padded with 0.",
    )
    k = mid.number_input("Non-zero entries k", 1, bits, max(1, bits // 2), key="k")
    right.button(
        "Random input",
        on_click=new_bits,
        args=(key, config, int(k)),
        width="stretch",
    )
    try:
        x = toy_inputs.parse_bits(text, bits)
    except ValueError as exc:
        st.error(f"Cannot read the input: {exc}")
        return
    trace = traces.run_toy(model, x, mode, run_seed(info))
    pred, target = int(trace.logits.argmax()), toy_inputs.parity_target(x)
    st.image(images.bits_rgb(x, 36), caption="−1 orange · 0 grey · +1 blue", output_format="PNG")
    st.markdown(
        f"#### Prediction {pred} · target {target} &nbsp; {badge(pred == target, 'correct')}"
    )
    m1, m2 = st.columns(2)
    m1.metric("Ponder steps (output unit)", f"{trace.steps[0]:.2f}")
    m2.metric("Non-zero entries k", int((x != 0).sum()))
    unit = "the output unit" + (" (the CLS position)" if trace.p.shape[0] > 1 else "")
    st.caption(f"Halting of {unit} per ponder step: {halting_caption(info['criterion'])}")
    halting_chart(trace.p[0], trace.halt_prob[0], info["criterion"])
    if trace.p.shape[0] > 1:
        st.caption("Ponder steps per position (0 = CLS, then the input entries)")
        chart(
            pd.DataFrame(
                {"steps": trace.steps}, index=pd.Index(np.arange(len(trace.steps)), name="position")
            ),
            y_title="ponder steps",
        )
    difficulty_section(
        model,
        info,
        model_key,
        mode,
        "non-zero entries k",
        traces.parity_by_difficulty,
        "Random examples per level",
        64,
    )


def addition_page(
    model, info: dict, model_key: tuple, mode: str, defaults: argparse.Namespace
) -> None:
    config = info["config"]
    T, D = int(config["sequence_length"]), int(config["max_digits"])
    places = int(info["data_meta"]["places"])
    key = f"numbers:{model_key[0]}"
    if key not in st.session_state:
        new_numbers(key, config)
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    text = left.text_input(
        f"Input: up to {T} numbers of up to {D} digits",
        key=key,
        help="Separated by spaces, commas or +.",
    )
    right.button("Random input", on_click=new_numbers, args=(key, config), width="stretch")
    try:
        numbers = toy_inputs.parse_numbers(text, T, D)
    except ValueError as exc:
        st.error(f"Cannot read the input: {exc}")
        return
    trace = traces.run_toy(model, toy_inputs.encode_numbers(numbers, D), mode, run_seed(info))
    targets = toy_inputs.addition_targets(numbers, places)  # (T, P)
    predicted = trace.logits.argmax(-1)  # (T, P)
    right_steps = (predicted == targets).all(-1)
    rows = pd.DataFrame(
        {
            "number": numbers,
            "running sum": [toy_inputs.decode_places(t) for t in targets],
            "predicted": [toy_inputs.decode_places(p) for p in predicted],
            "right": ["—" if t == 0 else ("✓" if r else "✗") for t, r in enumerate(right_steps)],
            "ponder steps": np.round(trace.steps, 2),
        },
        index=pd.Index(np.arange(1, len(numbers) + 1), name="step t"),
    )
    scored = right_steps[1:]
    ok = bool(scored.all()) if len(scored) else False
    st.markdown(
        f"#### Final sum {toy_inputs.decode_places(targets[-1])} · predicted "
        f"{toy_inputs.decode_places(predicted[-1])} &nbsp; {badge(ok, 'all sums right')}"
    )
    st.dataframe(rows, width="stretch")
    st.caption(
        "No output is scored at t = 1 (Graves 2016, 3.3). Halting distribution p_n per input step:"
    )
    frame = pd.DataFrame(
        trace.p.T,
        columns=[f"t={t}" for t in range(1, len(numbers) + 1)],
        index=pd.Index(np.arange(1, trace.p.shape[1] + 1), name="ponder step n"),
    )
    chart(frame, share=True, height=280)
    difficulty_section(
        model,
        info,
        model_key,
        mode,
        "digits of the added number",
        traces.addition_by_difficulty,
        "Random examples",
        256,
    )


def difficulty_section(
    model,
    info: dict,
    model_key: tuple,
    mode: str,
    level: str,
    score: Score,
    examples: str,
    default_size: int,
) -> None:
    """Accuracy and mean ponder steps per difficulty `level` as `score` finds them on a random
    batch: `examples` labels its size (`default_size` at first)."""
    st.divider()
    st.markdown(f"#### Accuracy and ponder steps by difficulty ({level})")
    a, b = st.columns(2)
    size = int(a.number_input(examples, 8, 4096, default_size, step=8, key="size"))
    seed = int(b.number_input("Seed", 0, 10**6, 0, key="seed"))
    table = by_difficulty(model, model_key, score, info["config"], size, seed, mode)
    left, right = st.columns(2)
    with left:
        chart(table[["accuracy"]], y_title="accuracy", share=True)
    with right:
        chart(table[["mean steps"]], y_title="mean ponder steps")
    st.dataframe(
        table.style.format({"accuracy": "{:.1%}", "mean steps": "{:.2f}"}), width="stretch"
    )
