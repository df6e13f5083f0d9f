"""Maze grids, heatmaps and parity inputs as RGB images in one palette (pure numpy: the viewer's
pages show them, tests call them)."""

from __future__ import annotations

import functools
import math

import numpy as np

# --- palette ---------------------------------------------------------------------------------

# Indexed by token PAD, WALL, OPEN, START, GOAL, PATH (halting.data.grid).
PALETTE = np.array(
    [
        (190, 190, 196),  # pad: grey
        (44, 48, 61),  # wall: charcoal
        (247, 245, 239),  # open: paper white
        (0, 158, 115),  # S: bluish green
        (213, 94, 0),  # G: vermillion
        (0, 114, 178),  # path: blue
    ],
    dtype=np.uint8,
)
TOKEN_NAMES = ("pad", "wall", "open", "start S", "goal G", "path")
ERROR_RGB = np.array((255, 0, 144), dtype=np.uint8)  # magenta frame around a wrong cell
LINE_RGB = np.array((214, 210, 200), dtype=np.uint8)  # thin grid lines
# Parity entries -1, 0, +1 (index value + 1).
BIT_PALETTE = np.array([(230, 159, 0), (225, 225, 230), (86, 180, 233)], dtype=np.uint8)


def hex_colour(rgb) -> str:
    return "#" + "".join(f"{int(v):02x}" for v in rgb)


def cell_pixels(size: int, target: int = 480) -> int:
    """Pixels per cell so a `size`-cell side is about `target` pixels (6 to 48)."""
    return max(6, min(48, target // max(1, size)))


def square(grid: np.ndarray) -> np.ndarray:
    """A flat (L,) grid as (S, S); a 2-D grid unchanged."""
    grid = np.asarray(grid)
    if grid.ndim == 2:
        return grid
    side = math.isqrt(grid.size)
    if side * side != grid.size:
        raise ValueError(f"a grid of {grid.size} cells is not square")
    return grid.reshape(side, side)


def tiles_rgb(colours: np.ndarray, cell_px: int, errors: np.ndarray | None = None) -> np.ndarray:
    """(R, C, 3) cell colours -> (R*px, C*px, 3) uint8 image with grid lines and error frames."""
    img = np.repeat(np.repeat(colours.astype(np.uint8), cell_px, 0), cell_px, 1)
    if cell_px >= 8:  # one-pixel line on each cell's right and bottom edge
        img[cell_px - 1 :: cell_px, :] = (
            img[cell_px - 1 :: cell_px, :] * 0.55 + LINE_RGB * 0.45
        ).astype(np.uint8)
        img[:, cell_px - 1 :: cell_px] = (
            img[:, cell_px - 1 :: cell_px] * 0.55 + LINE_RGB * 0.45
        ).astype(np.uint8)
    if errors is not None:
        width = max(2, cell_px // 8)
        frame = np.zeros((cell_px, cell_px), dtype=bool)
        frame[:width], frame[-width:], frame[:, :width], frame[:, -width:] = True, True, True, True
        mask = np.kron(np.asarray(errors, dtype=bool), frame).astype(bool)
        img[mask] = ERROR_RGB
    return img


def grid_rgb(
    grid: np.ndarray, cell_px: int | None = None, errors: np.ndarray | None = None
) -> np.ndarray:
    """A maze grid of tokens (S, S) or (L,) as an RGB image; `errors` (S, S) cells get a frame."""
    grid = square(grid)
    cell_px = cell_px or cell_pixels(grid.shape[0])
    colours = PALETTE[np.clip(grid.astype(np.int64), 0, len(PALETTE) - 1)]
    return tiles_rgb(colours, cell_px, None if errors is None else square(errors))


@functools.lru_cache(maxsize=8)
def colour_table(cmap: str) -> np.ndarray:
    """(256, 3) uint8 lookup table of a matplotlib colormap."""
    import matplotlib

    rgb = matplotlib.colormaps[cmap](np.linspace(0, 1, 256))[:, :3]
    return (rgb * 255).round().astype(np.uint8)


def heatmap_rgb(
    values: np.ndarray,
    vmin: float,
    vmax: float,
    cmap: str = "viridis",
    cell_px: int | None = None,
    dim: np.ndarray | None = None,
) -> np.ndarray:
    """Per-cell values (S, S) or (L,) as a colour-mapped image; `dim` cells (walls) darkened."""
    values = square(np.asarray(values, dtype=np.float64))
    cell_px = cell_px or cell_pixels(values.shape[0])
    span = vmax - vmin if vmax > vmin else 1.0
    idx = np.clip(np.round((values - vmin) / span * 255), 0, 255).astype(np.int64)
    colours = colour_table(cmap)[idx].astype(np.float64)
    if dim is not None:
        colours[square(dim)] = colours[square(dim)] * 0.45
    return tiles_rgb(colours, cell_px)


def colourbar_rgb(cmap: str = "viridis", width: int = 256, height: int = 14) -> np.ndarray:
    """A horizontal colour scale strip (height, width, 3) for a heatmap's legend."""
    table = colour_table(cmap)[np.linspace(0, 255, width).round().astype(np.int64)]
    return np.repeat(table[None], height, axis=0)


def bits_rgb(bits: np.ndarray, cell_px: int = 26) -> np.ndarray:
    """A parity input vector in {-1, 0, +1} as one row of coloured cells."""
    idx = np.clip(np.asarray(bits).round().astype(np.int64) + 1, 0, 2)
    return tiles_rgb(BIT_PALETTE[idx][None], cell_px)
