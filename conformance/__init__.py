"""The cross-backend conformance suite: a float64 NumPy reference of RoBERTa (`reference`), a
table of cases (`cases`), the runner (`suite`), one adapter per backend (`backends`) and the
`roberta parity` command (`parity`, `cli_main`). Ships with the library; imports no framework
until a backend is asked for."""

from .parity import cli_main

__all__ = ["cli_main"]
