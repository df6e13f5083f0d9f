"""Evaluation: `evaluate(ckpt)` -> eval.json, per_example.parquet, examples.npz."""
