"""Pixel-classifier model files without pickle: a random forest as plain arrays.

A model file is one ``.npz`` archive (read with ``allow_pickle=False``, so loading it
can never run code) holding

* ``metadata``: UTF-8 JSON (format name and version, class list, channel roles,
  feature settings, the pixel size it was trained at, library versions, training
  summary, and a SHA-256 digest of the rest of the metadata and every array);
* the forest, every tree concatenated: ``node_offsets`` (start of each tree),
  ``left``, ``right``, ``feature``, ``threshold``, ``value`` (per-node class
  fractions) and, for scikit-learn's fast predictor, ``impurity``, ``n_node_samples``,
  ``weighted_n_node_samples``, ``missing_go_to_left``.

Loading checks the format, the digest and the tree structure (children after their
parent, features and classes in range) before anything uses the arrays; a file that
is not a model, or whose arrays were edited, is refused with one line naming it.
Prediction uses scikit-learn's tree code when its node layout is the one recorded
here, else a small numpy predictor that gives the same probabilities.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "histo-fms pixel classifier"
#: files with another major format version are refused
FORMAT_VERSION = 1

_ARRAYS = ("node_offsets", "left", "right", "feature", "threshold", "value", "impurity",
           "n_node_samples", "weighted_n_node_samples", "missing_go_to_left")
_DTYPES = {"node_offsets": np.int64, "left": np.int64, "right": np.int64,
           "feature": np.int64, "threshold": np.float64, "value": np.float64,
           "impurity": np.float64, "n_node_samples": np.int64,
           "weighted_n_node_samples": np.float64, "missing_go_to_left": np.uint8}


class ModelError(ValueError):
    """A model file that cannot be used: one line naming the file and the problem."""

    user_facing = True

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = Path(path)
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{self.path.name}: {self.problem}")


@dataclass
class Forest:
    """A random forest as flat arrays (every tree concatenated).

    Attributes
    ----------
    arrays : dict of str to ndarray
        ``node_offsets`` (n_trees + 1), and per node ``left``, ``right`` (child index
        within its tree, -1 for a leaf), ``feature`` (-2 for a leaf), ``threshold``
        (go left when ``x[feature] <= threshold``), ``value`` (n_nodes, n_classes,
        class fractions), plus the fields scikit-learn's trees keep.
    n_features : int
        Number of features the forest expects.
    """

    arrays: dict[str, np.ndarray]
    n_features: int
    _sk_trees: list | None = field(default=None, repr=False)

    @property
    def n_trees(self) -> int:
        """Return the number of trees."""
        return int(self.arrays["node_offsets"].size - 1)

    @property
    def n_classes(self) -> int:
        """Return the number of classes."""
        return int(self.arrays["value"].shape[1])

    @classmethod
    def from_sklearn(cls, forest: Any) -> Forest:
        """Flatten a fitted ``sklearn.ensemble.RandomForestClassifier``.

        Parameters
        ----------
        forest : RandomForestClassifier
            A fitted single-output forest.

        Returns
        -------
        Forest
            Its trees as arrays.
        """
        parts: dict[str, list[np.ndarray]] = {k: [] for k in _ARRAYS if k != "node_offsets"}
        offsets = [0]
        for est in forest.estimators_:
            t = est.tree_
            state = t.__getstate__()
            nodes = state["nodes"]
            val = np.asarray(state["values"], np.float64)[:, 0, :]
            s = val.sum(axis=1, keepdims=True)
            val = np.divide(val, s, out=np.zeros_like(val), where=s > 0)
            parts["left"].append(np.asarray(nodes["left_child"], np.int64))
            parts["right"].append(np.asarray(nodes["right_child"], np.int64))
            parts["feature"].append(np.asarray(nodes["feature"], np.int64))
            parts["threshold"].append(np.asarray(nodes["threshold"], np.float64))
            parts["value"].append(val)
            parts["impurity"].append(np.asarray(nodes["impurity"], np.float64))
            parts["n_node_samples"].append(np.asarray(nodes["n_node_samples"], np.int64))
            parts["weighted_n_node_samples"].append(
                np.asarray(nodes["weighted_n_node_samples"], np.float64))
            mg = (nodes["missing_go_to_left"] if "missing_go_to_left" in nodes.dtype.names
                  else np.zeros(len(nodes), np.uint8))
            parts["missing_go_to_left"].append(np.asarray(mg, np.uint8))
            offsets.append(offsets[-1] + len(nodes))
        arrays = {k: np.concatenate(v) for k, v in parts.items()}
        arrays["node_offsets"] = np.asarray(offsets, np.int64)
        return cls(arrays=arrays, n_features=int(forest.n_features_in_))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (the mean of the trees' leaf class fractions).

        Parameters
        ----------
        x : ndarray, shape (n_samples, n_features)
            Features.

        Returns
        -------
        ndarray of float64, shape (n_samples, n_classes)
            Probabilities, equal to scikit-learn's ``predict_proba`` of the forest.
        """
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected features of shape (n, {self.n_features}), "
                             f"got {x.shape}")
        trees = self._sklearn_trees()
        out = np.zeros((x.shape[0], self.n_classes), np.float64)
        if x.shape[0] == 0:
            return out
        if trees is not None:
            for t in trees:
                out += np.asarray(t.predict(x)).reshape(x.shape[0], -1)
        else:
            for i in range(self.n_trees):
                out += self._predict_tree_numpy(i, x)
        out /= self.n_trees
        return out

    def _tree_slice(self, i: int) -> slice:
        o = self.arrays["node_offsets"]
        return slice(int(o[i]), int(o[i + 1]))

    def _predict_tree_numpy(self, i: int, x: np.ndarray) -> np.ndarray:
        sl = self._tree_slice(i)
        left, right = self.arrays["left"][sl], self.arrays["right"][sl]
        feat, thr = self.arrays["feature"][sl], self.arrays["threshold"][sl]
        node = np.zeros(x.shape[0], np.int64)
        active = np.flatnonzero(left[node] >= 0)
        while active.size:
            n = node[active]
            go_left = x[active, feat[n]] <= thr[n]
            node[active] = np.where(go_left, left[n], right[n])
            active = active[left[node[active]] >= 0]
        return self.arrays["value"][sl][node]

    def _sklearn_trees(self) -> list | None:
        """scikit-learn ``Tree`` objects built from the arrays (None if not possible)."""
        if self._sk_trees is not None:
            return self._sk_trees or None
        trees: list = []
        try:
            from sklearn.tree._tree import Tree

            probe = Tree(1, np.array([1], np.intp), 1)
            names = probe.__getstate__()["nodes"].dtype.names
            source = {"left_child": "left", "right_child": "right", "feature": "feature",
                      "threshold": "threshold", "impurity": "impurity",
                      "n_node_samples": "n_node_samples",
                      "weighted_n_node_samples": "weighted_n_node_samples",
                      "missing_go_to_left": "missing_go_to_left"}
            if not set(names) <= set(source):
                raise TypeError("unknown node layout")
            dtype = probe.__getstate__()["nodes"].dtype
            for i in range(self.n_trees):
                sl = self._tree_slice(i)
                n = sl.stop - sl.start
                nodes = np.zeros(n, dtype=dtype)
                for name in names:
                    nodes[name] = self.arrays[source[name]][sl]
                values = np.ascontiguousarray(self.arrays["value"][sl][:, None, :])
                t = Tree(self.n_features, np.array([self.n_classes], np.intp), 1)
                t.__setstate__({"max_depth": _depth(self.arrays["left"][sl],
                                                    self.arrays["right"][sl]),
                                "node_count": n, "nodes": nodes, "values": values})
                trees.append(t)
        except Exception:  # noqa: BLE001 - any incompatibility: use the numpy predictor
            trees = []
        self._sk_trees = trees
        return trees or None


def _depth(left: np.ndarray, right: np.ndarray) -> int:
    depth = np.zeros(left.size, np.int64)
    for i in range(left.size):  # children come after their parent (checked at load)
        if left[i] >= 0:
            depth[left[i]] = depth[right[i]] = depth[i] + 1
    return int(depth.max()) if depth.size else 0


def _digest(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> str:
    h = hashlib.sha256()
    rest = {k: v for k, v in meta.items() if k != "sha256"}
    h.update(json.dumps(rest, sort_keys=True).encode("utf-8"))
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(k.encode())
        h.update(str(a.dtype.str).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _check_forest(arrays: Mapping[str, np.ndarray], n_features: int, n_classes: int) -> str:
    """Return what is wrong with the forest arrays ('' when they are consistent)."""
    off = arrays["node_offsets"]
    if off.ndim != 1 or off.size < 2 or off[0] != 0 or np.any(np.diff(off) < 1):
        return "bad tree offsets"
    n = int(off[-1])
    for k in _ARRAYS:
        if k == "node_offsets":
            continue
        a = arrays[k]
        if a.shape[0] != n or (k != "value" and a.ndim != 1):
            return f"array {k!r} has shape {a.shape}, expected {n} nodes"
    if arrays["value"].shape != (n, n_classes):
        return f"class values have shape {arrays['value'].shape}, expected ({n}, {n_classes})"
    if not np.all(np.isfinite(arrays["value"])) or not np.all(np.isfinite(
            arrays["threshold"][arrays["left"] >= 0])):
        return "non-finite values in the trees"
    starts = np.repeat(off[:-1], np.diff(off))
    local = np.arange(n) - starts
    size = np.repeat(np.diff(off), np.diff(off))
    left, right, feat = arrays["left"], arrays["right"], arrays["feature"]
    leaf = left < 0
    if np.any((right < 0) != leaf) or np.any(left[leaf] != -1) or np.any(right[leaf] != -1):
        return "inconsistent leaves"
    inner = ~leaf
    if np.any(left[inner] <= local[inner]) or np.any(right[inner] <= local[inner]) or np.any(
            left[inner] >= size[inner]) or np.any(right[inner] >= size[inner]):
        return "tree children out of order or out of range"
    if np.any(feat[inner] < 0) or np.any(feat[inner] >= n_features):
        return "split feature out of range"
    # every node but the root is the child of exactly one node
    for t in range(off.size - 1):
        sl = slice(int(off[t]), int(off[t + 1]))
        m = sl.stop - sl.start
        kids = np.concatenate([left[sl][inner[sl]], right[sl][inner[sl]]])
        if kids.size != m - 1 or np.unique(kids).size != m - 1:
            return "tree nodes not a tree"
    return ""


def save_model(path: str | os.PathLike, forest: Forest, metadata: Mapping[str, Any]) -> Path:
    """Write a model file atomically (``.npz``, no pickle).

    Parameters
    ----------
    path : str or path-like
        Destination (``.npz`` is appended when missing).
    forest : Forest
        The trees.
    metadata : mapping
        JSON-serialisable description (roles, classes, features, pixel size, ...).

    Returns
    -------
    Path
        The file written.
    """
    p = Path(path)
    if not p.name.endswith(".npz"):
        p = p.with_name(p.name + ".npz")
    arrays = {k: np.ascontiguousarray(forest.arrays[k], _DTYPES[k]) for k in _ARRAYS}
    meta = dict(metadata)
    meta.update({"format": FORMAT, "format_version": FORMAT_VERSION,
                 "n_features": int(forest.n_features), "n_trees": forest.n_trees})
    meta = json.loads(json.dumps(meta))  # plain JSON types, as read back
    meta["sha256"] = _digest(arrays, meta)
    blob = np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), np.uint8)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp.npz", dir=p.parent)
    os.close(fd)
    try:
        np.savez_compressed(tmp, metadata=blob, **arrays)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private
        os.replace(tmp, p)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return p


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a model file's metadata only (cheap: no trees).

    Parameters
    ----------
    path : str or path-like
        Model file.

    Returns
    -------
    dict
        The metadata.

    Raises
    ------
    ModelError
        Missing file, not a model, or another format version.
    """
    p = Path(path)
    with _open(p) as z:
        return _metadata(p, z)


def _open(p: Path) -> Any:
    if not p.is_file():
        raise ModelError(p, "pixel-classifier model file not found")
    if not zipfile.is_zipfile(p):
        raise ModelError(p, "not a histo-fms pixel-classifier model (not an .npz archive)")
    try:
        return np.load(p, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - any failure is "not a model"
        raise ModelError(p, f"not a histo-fms pixel-classifier model ({exc})") from None


def _metadata(p: Path, z: Any) -> dict[str, Any]:
    try:
        raw = z["metadata"]
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise ValueError("bad metadata entry")
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except Exception:  # noqa: BLE001
        raise ModelError(p, "not a histo-fms pixel-classifier model (no readable metadata)"
                         ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelError(p, "not a histo-fms pixel-classifier model")
    v = meta.get("format_version")
    if not isinstance(v, int) or v != FORMAT_VERSION:
        raise ModelError(p, f"model format version {v!r} is not supported (this histo-fms "
                         f"reads version {FORMAT_VERSION}); retrain it with `histo-fms "
                         "train-pixels`")
    return meta


def load_model(path: str | os.PathLike, *, roles: Sequence[str] | None = None
               ) -> tuple[Forest, dict[str, Any]]:
    """Load and verify a model file written by :func:`save_model`.

    Parameters
    ----------
    path : str or path-like
        Model file.
    roles : sequence of str, optional
        Channel roles available; the model's roles must all be among them.

    Returns
    -------
    forest : Forest
        The trees.
    metadata : dict
        The metadata.

    Raises
    ------
    ModelError
        Not a model, another format version, edited or inconsistent arrays, or
        channel roles the model needs that are not available.
    """
    p = Path(path)
    with _open(p) as z:
        meta = _metadata(p, z)
        try:
            arrays = {k: z[k] for k in _ARRAYS}
        except Exception as exc:  # noqa: BLE001
            raise ModelError(p, f"incomplete model file ({exc})") from None
    for k, a in arrays.items():
        if a.dtype != np.dtype(_DTYPES[k]):
            raise ModelError(p, f"model array {k!r} has dtype {a.dtype}")
    if meta.get("sha256") != _digest(arrays, meta):
        raise ModelError(p, "model contents do not match their recorded checksum (edited "
                         "or corrupted file)")
    try:
        n_features = int(meta["n_features"])
        classes = [int(c) for c in meta["classes"]]
        model_roles = [str(r) for r in meta["roles"]]
        n_expected = int(meta["features"]["per_role"]) * len(model_roles)
        float(meta["pixel_size_um"])
    except (KeyError, TypeError, ValueError):
        raise ModelError(p, "model metadata incomplete (classes, roles, features, "
                         "pixel_size_um)") from None
    if n_features != n_expected:
        raise ModelError(p, f"model expects {n_features} features but its settings give "
                         f"{n_expected} (edited metadata?)")
    problem = _check_forest(arrays, n_features, len(classes))
    if problem:
        raise ModelError(p, f"not a valid model: {problem}")
    if roles is not None:
        missing = [r for r in model_roles if r not in set(roles)]
        if missing:
            raise ModelError(p, f"model was trained on channel roles {model_roles}; "
                             f"this image lacks {missing} (map them with --channel or "
                             "the config's channels:, or retrain)")
    return Forest(arrays=arrays, n_features=n_features), meta
