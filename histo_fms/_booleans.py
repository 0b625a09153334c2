"""Booleans written as text: the one truthy-string parser of the package.

A leaf module (pandas only), so pure-compute packages (``drg``, ``stats``) and the table
schema share it without importing IO.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

__all__ = ["FALSE_STRINGS", "TRUE_STRINGS", "parse_bool"]

TRUE_STRINGS = frozenset({"true", "1", "yes", "y", "t"})
FALSE_STRINGS = frozenset({"false", "0", "no", "n", "f", ""})


def parse_bool(values: pd.Series | Iterable | None, *, strict: bool = False,
               nullable: bool = False, extra_true: Iterable[str] = (),
               what: str = "value") -> pd.Series:
    """Parse booleans written as text (``True``/``false``/``1``/``yes``...).

    The one truthy-string parser of the package.

    Parameters
    ----------
    values : pandas.Series, iterable or None
        Booleans, numbers or strings.
    strict : bool
        Raise on a value that is neither a true nor a false string.
    nullable : bool
        Return a nullable ``boolean`` Series with blanks as NA (else blanks are False).
    extra_true : iterable of str
        More strings read as True (lower case).
    what : str
        Name used in the error message.

    Returns
    -------
    pandas.Series
        ``bool`` (or ``boolean`` when ``nullable``).

    Raises
    ------
    ValueError
        ``strict`` and an unparseable value.
    """
    if values is None:
        return pd.Series([], dtype="boolean" if nullable else bool)
    s = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    if s.dtype == bool and not nullable:
        return s
    true = TRUE_STRINGS | {str(x).lower() for x in extra_true}
    blank = s.isna()
    text = s.astype(object).where(~blank, "").map(lambda v: str(v).strip().lower())
    text = text.replace({"nan": "", "none": "", "<na>": "", "1.0": "1", "0.0": "0"})
    is_true = text.isin(true)
    if strict:
        bad = sorted(set(text[~is_true & ~text.isin(FALSE_STRINGS)]))
        if bad:
            raise ValueError(f"{what} must be true/false, found {bad}")
    if nullable:
        out = pd.Series(is_true.to_numpy(), index=s.index, dtype="boolean")
        out[(text == "").to_numpy()] = pd.NA
        return out
    return pd.Series(is_true.to_numpy(bool), index=s.index)
