"""Training: the Lightning system, `train(...)`, its callbacks and checkpoints."""
