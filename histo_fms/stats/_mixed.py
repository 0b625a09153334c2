"""Linear mixed model of neuron-level ring IgG with the animal as random effect."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ._tests import MIN_UNITS_PER_GROUP, STATS_COLUMNS, _row


def mixed_model_ring_igg(
    neurons: pd.DataFrame,
    *,
    value: str = "ring_igg",
    group: str = "group",
    unit_col: str = "unit_id",
    unit: str = "animal",
    reference: str | None = None,
) -> pd.DataFrame:
    """Fit ``log(ring_igg) ~ group + (1 | unit)`` at neuron level (statsmodels MixedLM).

    Neurons of one animal are not independent; the random intercept per unit keeps
    the group effect from being pseudo-replicated.

    Parameters
    ----------
    neurons : pandas.DataFrame
        One row per neuron (from :func:`pool_neurons`), with ``value``, ``group`` and
        ``unit_col`` columns.
    value : str
        Ratio column, log-transformed (non-positive values are dropped).
    group : str
        Group column (fixed effect, treatment-coded).
    unit_col : str
        Column identifying the unit (random intercept).
    unit : str
        Name of the unit written in the ``unit`` column of the result.
    reference : str or None
        Reference group (default: the first in sorted order).

    Returns
    -------
    pandas.DataFrame
        One row per non-reference group (that group vs the reference), columns
        :data:`STATS_COLUMNS`, in the group order of :func:`compare_groups`: of the two
        groups, ``group_a`` is the first in sorted order; ``estimate`` is the log ratio
        a - b with its 95 % CI, ``statistic`` its Wald z, ``effect_size`` the ratio of
        geometric means a / b.
        With fewer than 3 units in either group ``p`` is NaN (a random-intercept model
        cannot estimate the between-unit variance from so few units; the note says so).
    """
    from statsmodels.regression.mixed_linear_model import MixedLM

    t = neurons[[value, group, unit_col]].copy()
    t[value] = pd.to_numeric(t[value], errors="coerce")
    t = t[np.isfinite(t[value]) & (t[value] > 0)]
    t[group] = t[group].astype(str)
    groups = sorted(t[group].unique())
    test = f"MixedLM log({value}) ~ {group} + (1|{unit})"
    if reference is None and groups:
        reference = groups[0]
    others = [g for g in groups if g != reference]
    n_units = t.groupby(group)[unit_col].nunique()
    n_neur = t.groupby(group).size()
    if not others or t[unit_col].nunique() < 3:
        return pd.DataFrame([_row(readout=value, unit=unit, test=test, group_a=reference or "",
                                  group_b="", note="too few groups or units to fit")],
                            columns=STATS_COLUMNS)
    y = np.log(t[value].to_numpy())
    x = np.column_stack([np.ones(len(t))] + [(t[group] == g).to_numpy(float) for g in others])
    note = ""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = MixedLM(y, x, groups=t[unit_col].to_numpy()).fit(reml=True)
        msgs = sorted({str(w.message).split("\n")[0] for w in caught})
        if msgs:
            note = "; ".join(msgs)[:300]
        params, bse = np.asarray(fit.fe_params), np.asarray(fit.bse_fe)
        pvals = np.asarray(fit.pvalues)[: len(params)]
    except (np.linalg.LinAlgError, ValueError) as exc:
        return pd.DataFrame([_row(readout=value, unit=unit, test=test, group_a=reference,
                                  group_b="", note=f"fit failed: {exc}")],
                            columns=STATS_COLUMNS)
    rows = []
    for i, g in enumerate(others, start=1):
        # the coefficient is g - reference; rows read a - b with a first in sorted order
        a, b = sorted([g, reference])
        est, se = (1.0 if a == g else -1.0) * float(params[i]), float(bse[i])
        n_a, n_b = int(n_units.get(a, 0)), int(n_units.get(b, 0))
        p = float(pvals[i])
        notes = [f"n are units; neurons: {int(n_neur.get(a, 0))} vs {int(n_neur.get(b, 0))}"]
        if min(n_a, n_b) < MIN_UNITS_PER_GROUP:
            p = np.nan
            notes.append(f"fewer than {MIN_UNITS_PER_GROUP} units in a group: no p-value")
        if note:
            notes.append(note)
        rows.append(_row(
            readout=value, unit=unit, test=test, group_a=a, group_b=b,
            n_a=n_a, n_b=n_b, statistic=est / se if se > 0 else np.nan, p=p,
            p_adjusted=p, effect_size=float(np.exp(est)),
            effect_size_name="ratio of geometric means a / b", estimate=est,
            estimate_name="log ratio a - b", ci_low=est - 1.959964 * se,
            ci_high=est + 1.959964 * se, note="; ".join(notes)))
    if len(rows) > 1:
        from ._tests import holm
        adj = holm([r["p"] for r in rows])
        for r, a in zip(rows, adj, strict=True):
            r["p_adjusted"] = float(a)
    return pd.DataFrame(rows, columns=STATS_COLUMNS)
