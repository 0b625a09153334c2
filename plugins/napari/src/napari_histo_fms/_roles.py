"""Channel-role pickers shared by the Run and pixel-classifier widgets."""

from __future__ import annotations

from collections.abc import Sequence

NONE = "(none)"
CHOOSE = "(choose a channel)"
#: channel-name prefixes (lower case) that suggest a role
ROLE_HINTS = {"neuron": ("neun", "tubb3", "beta", "pgp", "nf", "neurofil"), "igg": ("igg",),
              "sgc": ("gs", "fabp7", "kir", "gfap"), "nuclei": ("dapi", "hoechst"),
              "fibre": ("pgp", "fibre", "fiber"), "membrane": ("col", "laminin")}


def guess_role(role: str, names: Sequence[str]) -> str | None:
    """Return the first channel name that suggests ``role`` (None when none does)."""
    for n in names:
        if any(n.lower().startswith(h) for h in ROLE_HINTS.get(role, ())):
            return n
    return None


def fill_role_combo(cb, role: str, names: Sequence[str], *, required: bool,
                    placeholder: bool = True, want: str | None = None) -> None:
    """Offer ``names`` for one role in a combo box and pick the likely one.

    The choice is, in order: ``want`` (case-insensitive), the combo's current choice,
    the first name suggesting the role. An optional role starts with ``(none)``; a
    required one with ``(choose a channel)`` when ``placeholder`` (so it is never filled
    with an unrelated first channel), else with the first name.
    """
    cur = cb.currentText()
    cb.clear()
    head = ([CHOOSE] if placeholder else []) if required else [NONE]
    cb.addItems(head + list(names))
    for cand in (want, cur):
        hit = [n for n in names if cand and n.lower() == str(cand).lower()]
        if hit:
            cb.setCurrentText(hit[0])
            return
    auto = guess_role(role, names)
    if auto:
        cb.setCurrentText(auto)
