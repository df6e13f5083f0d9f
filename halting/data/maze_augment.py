"""aug8: the 8 dihedral symmetries of maze grids, in HRM/TRM's order, and the augmentation
that adds the symmetric copies of each maze with recomputed labels."""

from __future__ import annotations

import numpy as np

from halting.data.grid import canonical_labels

DIHEDRAL = (
    "identity",
    "rot90",
    "rot180",
    "rot270",
    "flip_lr",
    "flip_ud",
    "transpose",
    "anti_transpose",
)

_DIHEDRAL_OPS = (  # on grids (..., S, S), in DIHEDRAL's order
    lambda x: x,
    lambda x: np.rot90(x, 1, (-2, -1)),
    lambda x: np.rot90(x, 2, (-2, -1)),
    lambda x: np.rot90(x, 3, (-2, -1)),
    lambda x: np.flip(x, -1),
    lambda x: np.flip(x, -2),
    lambda x: np.swapaxes(x, -1, -2),
    lambda x: np.flip(np.rot90(x, 1, (-2, -1)), -1),
)


def dihedral(grids: np.ndarray, index: int) -> np.ndarray:
    """Symmetry `DIHEDRAL[index]` of grids (..., S, S), in HRM/TRM's order."""
    return _DIHEDRAL_OPS[index](grids)


def augment_dihedral(inputs: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """aug8: the 8 symmetric copies of each maze, consecutive (N*8, size*size); each label is
    recomputed as the canonical path of the transformed maze (a rotated path is not)."""
    grids = inputs.reshape(-1, size, size)
    copies = np.stack([dihedral(grids, k) for k in range(len(DIHEDRAL))], axis=1)
    aug_inputs = np.ascontiguousarray(copies).reshape(-1, size * size)
    return aug_inputs, canonical_labels(aug_inputs, size)
