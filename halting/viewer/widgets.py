"""Pieces the viewer's pages share: badges, the maze legend, pixel-exact pictures, colour
scales, Altair bar and line charts, and the halting distribution's chart and caption."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from halting.criteria import criterion_class
from halting.viewer import images

SERIES_COLOURS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00")  # Okabe-Ito


def run_seed(info: dict) -> int:
    """The run's config seed, which PonderNet's sampled halting is seeded with (as in evaluate)."""
    return int(info["config"].get("seed", 0))


def badge(ok: bool, name: str) -> str:
    if ok:
        return f":green-badge[:material/check: {name}]"
    return f":red-badge[:material/close: not {name}]"


def legend() -> None:
    items = "".join(
        f"<span class='sw' style='background:{images.hex_colour(c)}'></span>{n}"
        for c, n in zip(images.PALETTE[1:], images.TOKEN_NAMES[1:])
    )
    frame = (
        f"<span class='sw' style='background:white;border:3px solid "
        f"{images.hex_colour(images.ERROR_RGB)}'></span>wrong cell"
    )
    st.markdown(f"<div class='legend'>{items}{frame}</div>", unsafe_allow_html=True)


def picture(where, image: np.ndarray, caption: str | None = None) -> None:
    """An image filling its column, sent as PNG (JPEG would smear the cell edges)."""
    where.image(image, caption=caption, width="stretch", output_format="PNG")


def colourbar(cmap: str, low: str, high: str, what: str) -> None:
    picture(st, images.colourbar_rgb(cmap, 256, 12))
    st.caption(f"{low} ⟶ {high} {what}")


def chart(
    frame: pd.DataFrame,
    mark: str = "bar",
    x_title: str | None = None,
    y_title: str = "",
    share: bool = False,
    zero: bool = True,
    colours: tuple[str, ...] = SERIES_COLOURS,
    height: int = 240,
) -> None:
    """Each column of `frame` against its index, as grouped bars or lines; `share` puts the
    y axis on 0-100 %."""
    series = [str(c) for c in frame.columns]
    data = frame.set_axis(series, axis=1).rename_axis("x").reset_index()
    data = data.melt("x", var_name="series", value_name="y").dropna()
    x_title = x_title or frame.index.name or ""
    colour = alt.Color(
        "series:N",
        sort=series,
        title=None,
        scale=alt.Scale(domain=series, range=list(colours[: len(series)])),
        legend=alt.Legend(orient="right") if len(series) > 1 else None,
    )
    y = alt.Y(
        "y:Q",
        title=y_title,
        axis=alt.Axis(format=".0%" if share else "~r"),
        scale=alt.Scale(domain=[0, 1]) if share else alt.Scale(zero=zero),
    )
    tooltip = [
        alt.Tooltip("x", title=x_title or "x"),
        alt.Tooltip("series", title="series"),
        alt.Tooltip("y:Q", title=y_title or "value", format=".4~g"),
    ]
    base = alt.Chart(data)
    if mark == "bar":
        plot = base.mark_bar().encode(
            x=alt.X("x:O", title=x_title, axis=alt.Axis(labelAngle=0)),
            xOffset=alt.XOffset("series:N", sort=series),
            y=y,
            color=colour,
            tooltip=tooltip,
        )
    else:
        whole = pd.api.types.is_integer_dtype(frame.index)
        axis = alt.Axis(format="~r", tickMinStep=1) if whole else alt.Axis(format="~r")
        plot = base.mark_line(point=len(data) <= 64).encode(
            x=alt.X("x:Q", title=x_title, axis=axis), y=y, color=colour, tooltip=tooltip
        )
    st.altair_chart(plot, width="stretch", height=height)


def halting_caption(criterion: str) -> str:
    return criterion_class(criterion).halt_prob_caption


def halting_chart(p: np.ndarray, halt_prob: np.ndarray | None, criterion: str) -> None:
    """Bar chart of one unit's halting distribution p_n (and its halting probability h_n, or
    PonderNet's lambda_n) per ponder step."""
    frame = pd.DataFrame({"p_n": p}, index=pd.Index(np.arange(1, len(p) + 1), name="ponder step n"))
    if halt_prob is not None:
        frame[criterion_class(criterion).halt_prob_symbol] = halt_prob
    chart(frame, share=True, height=280)
