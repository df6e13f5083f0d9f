"""Backbones: plain nn.Modules that take a halting criterion (see `halting.criteria`)."""
