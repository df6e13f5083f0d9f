"""halting: adaptive-computation (halting) networks, from dataset to paper figures.

Heavy imports (torch, Lightning) are deferred: `import halting` is cheap.
"""

__version__ = "0.1.0"


def load_model(path, map_location="cpu"):
    """(model, info) from a `halting` checkpoint alone: the right class, EMA weights when present,
    no arbitrary unpickling (see `halting.training.checkpoint.load_model`)."""
    from halting.training.checkpoint import load_model as _load

    return _load(path, map_location=map_location)
