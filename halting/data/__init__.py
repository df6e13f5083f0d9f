"""Datasets: Maze-Hard (HRM format), parity and addition (seeded generators), DataModules."""
