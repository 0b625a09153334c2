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

    An optional role mapped to a channel *name* the file lacks is left out of the
    result (a mixed batch where only some files have, say, collagen IV);
    :func:`resolve_channels_report` also says which roles were skipped.

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
        A required role is unmapped, a role is unknown, a required role's name matches
        no channel (the message lists the file's channels) or several (names compared
        case-insensitively), an index is out of range or one channel is given for two
        roles.
    """
    return resolve_channels_report(channel_names, mapping, required=required,
                                   optional=optional, path=path)[0]


def _absent_optional(channel_names: list[str], mapping: Mapping[str, str | int],
                     optional: Iterable[str]) -> dict[str, str]:
    """Return the optional roles mapped to a channel name not in ``channel_names``."""
    lower = {n.lower() for n in channel_names}
    out = {}
    for role in optional:
        spec = mapping.get(role)
        if spec is None or spec == "" or isinstance(spec, (bool, int)):
            continue
        s = str(spec)
        if s.lower() not in lower and not s.strip().lstrip("-").isdigit():
            out[role] = s
    return out


def resolve_channels_report(
    channel_names: list[str],
    mapping: Mapping[str, str | int],
    *,
    required: Iterable[str],
    optional: Iterable[str] = (),
    path: str | Path = "<image>",
) -> tuple[dict[str, int], dict[str, str]]:
    """Resolve role -> channel index, skipping optional roles whose channel is absent.

    Parameters
    ----------
    channel_names, mapping, required, optional, path
        As :func:`resolve_channels`.

    Returns
    -------
    roles : dict of str to int
        Role -> channel index, for every mapped role the file has.
    skipped : dict of str to str
        Optional role -> the channel name it was mapped to, for the optional roles
        left out because the file has no channel of that name. An optional role
        mapped to an index stays an error when out of range (an explicit choice).

    Raises
    ------
    InputError
        As :func:`resolve_channels`.
    """
    required, optional = list(required), list(optional)
    skipped = _absent_optional(channel_names, mapping, optional)
    mapping = {k: v for k, v in mapping.items() if k not in skipped}
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
    lower: dict[str, int] = {}
    twice: dict[str, list[int]] = {}
    for i, n in enumerate(channel_names):
        if n.lower() in lower:
            twice.setdefault(n.lower(), [lower[n.lower()]]).append(i)
        else:
            lower[n.lower()] = i
    out: dict[str, int] = {}
    for role, spec in mapping.items():
        if spec is None or spec == "":
            continue
        if isinstance(spec, bool):
            raise InputError(path, f"channel for role {role!r} must be a name or index")
        if isinstance(spec, int):
            idx = spec
        elif str(spec).lower() in twice:
            # two channels of one name: taking either would be a guess
            idx_s = " and ".join(str(i) for i in twice[str(spec).lower()])
            raise InputError(path, f"channel name {spec!r} (role {role}) matches channels "
                                   f"{idx_s} of [{have}]; map the role by index instead")
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
    return out, skipped
