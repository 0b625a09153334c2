"""Exceptions raised for bad input files, with one-line messages naming the file."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """A problem with one input file: the message names the file and the problem.

    Parameters
    ----------
    path : str or Path
        The offending file.
    problem : str
        What is wrong, in one line.
    """

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{self.path.name}: {self.problem}")
