"""Map channel roles (``neuron``, ``igg``, ...) to channel indices of a file."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from ._errors import InputError


def resolve_channels(
    channel_names: list[str],
    mapping: Mapping[str, str | int],
    *,
    required: Iterable[str],
    optional: Iterable[str] = (),
    path: str | Path = "<image>",
) -> dict[str, int]:
    """Resolve role -> channel index for one file.

    Parameters
    ----------
    channel_names : list of str
        The channels the file has, in order.
    mapping : mapping of str to str or int
        Role -> channel name (case-insensitive) or 0-based index (an int, or a string of
        digits that is not itself a channel name).
    required : iterable of str
        Roles that must be mapped.
    optional : iterable of str
        Roles that may be mapped.
    path : str or Path
        The file, for error messages.

    Returns
    -------
    dict of str to int
        Role -> channel index, for every mapped role.

    Raises
    ------
    InputError
        A required role is unmapped, a role is unknown, a name matches no channel
        (the message lists the file's channels), an index is out of range or one
        channel is given for two roles.
    """
    required, optional = list(required), list(optional)
    known = set(required) | set(optional)
    have = ", ".join(f"{i}:{n}" for i, n in enumerate(channel_names))
    unknown = sorted(set(mapping) - known)
    if unknown:
        raise InputError(path, f"unknown channel role(s) {unknown}; roles are {sorted(known)}")
    missing = [r for r in required if r not in mapping or mapping[r] in (None, "")]
    if missing:
        raise InputError(
            path, f"channel role(s) {missing} not mapped; the file's channels are [{have}]"
        )
    lower = {n.lower(): i for i, n in enumerate(channel_names)}
    out: dict[str, int] = {}
    for role, spec in mapping.items():
        if spec is None or spec == "":
            continue
        if isinstance(spec, bool):
            raise InputError(path, f"channel for role {role!r} must be a name or index")
        if isinstance(spec, int):
            idx = spec
        elif str(spec).lower() in lower:
            idx = lower[str(spec).lower()]
        elif str(spec).strip().lstrip("-").isdigit():
            idx = int(str(spec))
        else:
            raise InputError(
                path, f"no channel named {spec!r} (role {role}); the file's channels are [{have}]"
            )
        if not 0 <= idx < len(channel_names):
            raise InputError(
                path,
                f"channel index {idx} (role {role}) out of range; the file has "
                f"{len(channel_names)} channel(s) [{have}]",
            )
        out[role] = idx
    seen: dict[int, str] = {}
    for role, idx in out.items():
        if idx in seen:
            raise InputError(path, f"channel {idx}:{channel_names[idx]} is given for two roles "
                                   f"({seen[idx]} and {role}); each role needs its own channel")
        seen[idx] = role
    return out
