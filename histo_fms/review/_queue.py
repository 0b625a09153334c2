"""A blinded review queue over a batch: seeded random order, neutral case codes."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..io import write_json
from ._audit import utc_now
from ._results import file_entry, pipeline_kind, read_run, result_stems, summary_table
from ._session import ReviewSession


@dataclass(frozen=True)
class Case:
    """One image in a blinded queue, as the reviewer may see it.

    Attributes
    ----------
    code : str
        Neutral code (``case-03``); never derived from the file name.
    index : int
        1-based position in the queue.
    total : int
        Number of cases.
    done : bool
        Whether the reviewer completed it.
    """

    code: str
    index: int
    total: int
    done: bool = False

    @property
    def label(self) -> str:
        """Return ``"case 3 of 12"``."""
        return f"case {self.index} of {self.total}"


def _slug(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.strip()).strip("._")
    return s or "reviewer"


class ReviewQueue:
    """Blinded review of every image of a results folder, resumable.

    Images are shown in a random order fixed by ``seed``, each under a neutral code;
    file names and sample-sheet groups stay hidden until :meth:`unblind`, an explicit
    step recorded in the queue log. The queue (order, progress, log of who opened and
    completed what, when) is stored in ``OUT/review_queue/<reviewer>.json`` and resumed
    by constructing the queue again with the same reviewer.

    Parameters
    ----------
    results_dir : str or Path
        The results folder.
    reviewer : str
        Reviewer name or initials.
    seed : int, optional
        Seed of the order. Required when the queue is created; when resuming, it must
        match the stored one (or be None).

    Examples
    --------
    >>> q = ReviewQueue("results", "AB", seed=7)  # doctest: +SKIP
    >>> case = q.next_case()  # doctest: +SKIP
    >>> session = q.open_case(case.code)  # doctest: +SKIP
    >>> q.complete(case.code)  # doctest: +SKIP
    """

    def __init__(self, results_dir: str | Path, reviewer: str, seed: int | None = None):
        self.results_dir = Path(results_dir)
        self.reviewer = str(reviewer).strip()
        if not self.reviewer:
            raise ValueError("a reviewer name is required")
        self.path = self.results_dir / "review_queue" / f"{_slug(self.reviewer)}.json"
        run = read_run(self.results_dir)
        self.kind = pipeline_kind(run)
        if self.path.is_file():
            st = json.loads(self.path.read_text(encoding="utf-8"))
            if seed is not None and int(seed) != int(st["seed"]):
                raise ValueError(f"{self.reviewer} already has a queue with seed {st['seed']}; "
                                 f"resume it with that seed (or seed=None)")
            self._st = st
        else:
            if seed is None:
                raise ValueError("a new queue needs a seed")
            stems = result_stems(self.results_dir)
            if not stems:
                raise ValueError(f"{self.results_dir}: no measured images to review")
            order = [stems[i] for i in np.random.default_rng(int(seed)).permutation(len(stems))]
            width = max(2, len(str(len(order))))
            self._st = {
                "version": 1, "reviewer": self.reviewer, "seed": int(seed),
                "created": utc_now(), "pipeline": self.kind,
                "cases": [{"code": f"case-{i + 1:0{width}d}", "stem": s}
                          for i, s in enumerate(order)],
                "done": {}, "unblinded": False, "log": [],
            }
            self._log("created", None, {"n_cases": len(order)})

    # ------------------------------------------------------------------ state
    def _save(self) -> None:
        write_json(self._st, self.path)

    def _log(self, event: str, code: str | None, extra: dict | None = None) -> None:
        self._st["log"].append({"time": utc_now(), "reviewer": self.reviewer, "event": event,
                                "case": code, **(extra or {})})
        self._save()

    @property
    def seed(self) -> int:
        """The seed of the order."""
        return int(self._st["seed"])

    @property
    def log(self) -> list[dict]:
        """Queue events: created, opened, completed, unblinded (who, when, which case)."""
        return list(self._st["log"])

    @property
    def unblinded(self) -> bool:
        """Whether the key was revealed."""
        return bool(self._st["unblinded"])

    def cases(self) -> list[Case]:
        """Return the cases in queue order (codes only; no file names).

        Returns
        -------
        list of Case
            All cases.
        """
        n = len(self._st["cases"])
        return [Case(c["code"], i + 1, n, c["code"] in self._st["done"])
                for i, c in enumerate(self._st["cases"])]

    def case(self, code: str) -> Case:
        """Return one case by its code.

        Parameters
        ----------
        code : str
            Case code.

        Returns
        -------
        Case
            The case.
        """
        for c in self.cases():
            if c.code == code:
                return c
        raise KeyError(f"no case {code!r} in this queue")

    def _stem(self, code: str) -> str:
        for c in self._st["cases"]:
            if c["code"] == code:
                return c["stem"]
        raise KeyError(f"no case {code!r} in this queue")

    @property
    def progress(self) -> tuple[int, int]:
        """``(done, total)``."""
        return len(self._st["done"]), len(self._st["cases"])

    @property
    def finished(self) -> bool:
        """Whether every case is completed."""
        done, total = self.progress
        return done == total

    def next_case(self) -> Case | None:
        """Return the first case not completed yet (None when the queue is finished).

        Returns
        -------
        Case or None
            The next case.
        """
        for c in self.cases():
            if not c.done:
                return c
        return None

    # ------------------------------------------------------------------ actions
    def open_case(self, code: str) -> ReviewSession:
        """Open the review session of a case (recorded in the queue log).

        Parameters
        ----------
        code : str
            Case code.

        Returns
        -------
        ReviewSession
            The session, with ``blind_code`` set.
        """
        stem = self._stem(code)
        self._log("opened", code)
        return ReviewSession.open(self.results_dir, stem, self.reviewer, blind_code=code)

    def complete(self, code: str) -> Case | None:
        """Mark a case reviewed and return the next open case.

        Parameters
        ----------
        code : str
            Case code.

        Returns
        -------
        Case or None
            The next case, or None when the queue is finished.
        """
        self._stem(code)
        self._st["done"][code] = {"time": utc_now(), "reviewer": self.reviewer}
        self._log("completed", code)
        if self.finished:
            self._log("finished", None)
        return self.next_case()

    def unblind(self, *, force: bool = False) -> pd.DataFrame:
        """Reveal the key: case code -> image, stem and sample-sheet columns.

        Parameters
        ----------
        force : bool
            Unblind before every case is done (recorded as ``unblinded_early``).

        Returns
        -------
        pandas.DataFrame
            ``code, image, stem, subject, animal, group, done, completed_at``.

        Raises
        ------
        RuntimeError
            The queue is not finished and ``force`` is False.
        """
        if not self.finished and not force:
            done, total = self.progress
            raise RuntimeError(f"queue not finished ({done} of {total} cases done); "
                               "unblind(force=True) to reveal early")
        self._st["unblinded"] = True
        self._log("unblinded" if self.finished else "unblinded_early", None,
                  {"progress": list(self.progress)})
        return self.key()

    def key(self) -> pd.DataFrame:
        """Return the unblinding key (only after :meth:`unblind`).

        Returns
        -------
        pandas.DataFrame
            One row per case.
        """
        if not self.unblinded:
            raise RuntimeError("the queue is still blinded; call unblind()")
        run = read_run(self.results_dir)
        summ = summary_table(self.results_dir, self.kind)
        rows: list[dict[str, Any]] = []
        for c in self._st["cases"]:
            try:
                image = file_entry(run, c["stem"]).get("image", c["stem"])
            except KeyError:
                image = c["stem"]
            row = {"code": c["code"], "image": image, "stem": c["stem"]}
            if not summ.empty and "image" in summ:
                m = summ.loc[summ["image"] == image]
                for k in ("subject", "animal", "group"):
                    row[k] = m.iloc[0][k] if (not m.empty and k in m) else ""
            done = self._st["done"].get(c["code"])
            row["done"] = done is not None
            row["completed_at"] = done["time"] if done else ""
            rows.append(row)
        return pd.DataFrame(rows)

    def previous_case(self, code: str | None) -> Case | None:
        """Return the case before ``code`` in queue order (the last case when None)."""
        cases = self.cases()
        if not cases:
            return None
        if code is None:
            done = [c for c in cases if c.done]
            return done[-1] if done else None
        codes = [c.code for c in cases]
        i = codes.index(code) if code in codes else len(codes)
        return cases[i - 1] if i > 0 else None


    def reopen(self, code: str) -> Case:
        """Reopen a completed case to revisit it (it must be completed again)."""
        self._stem(code)
        if self._st["done"].pop(code, None) is not None:
            self._log("reopened", code)
        return self.case(code)


    def key_table(self) -> pd.DataFrame:
        """Return the key with automatic vs reviewed numbers per case (after unblinding).

        Returns
        -------
        pandas.DataFrame
            :meth:`ReviewQueue.key` plus ``n_auto, n_reviewed, delta`` and the main
            measure automatic / reviewed (``pct_igg_positive`` for DRG, ``ienfd_per_mm``
            for skin) from ``OUT/{kind}_summary_reviewed.csv``.
        """
        from ._session import write_reviewed_summary

        key = self.key()
        path = write_reviewed_summary(self.results_dir, self.kind)
        rev = pd.read_csv(path)
        main = "pct_igg_positive" if self.kind == "drg" else "ienfd_per_mm"
        cols = [c for c in ("n_auto", "n_reviewed", "delta", f"{main}_auto", main, "stale")
                if c in rev.columns]
        out = key.merge(rev[["image", *cols]], on="image", how="left")
        return out.rename(columns={main: f"{main}_reviewed"})
