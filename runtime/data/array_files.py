"""What `arrays(path, label, features)` needs of a file's names, read without numpy: the arrays of a
.npz (from its zip directory) and the columns of a .csv (its header row). `expc check` calls
`name_problems` through the operator's precheck, and the run calls it before reading the arrays, so a
misspelled label is the same diagnostic, with the same did-you-mean, at check time and at run time."""

from __future__ import annotations

import csv as _csv
import zipfile
from pathlib import Path

from expc.runtime.api import OpError
from expc.runtime.data.sources import shown
from expc.spec.diagnostics import did_you_mean

FEATURE_NAMES = ("x", "X")  # a .npz's features when `features` is not given (else the only other array)


def npz_names(path: str) -> list[str]:
    """The arrays of a .npz, in stored order (np.savez writes `name.npy` members)."""
    if not zipfile.is_zipfile(path):  # np.load would take other bytes for a pickle (and refuse it)
        raise OpError(f"{shown(path)}: not a .npz archive", field="path", hint="write it with np.savez")
    with zipfile.ZipFile(path) as z:
        return [n[: -len(".npy")] for n in z.namelist() if n.endswith(".npy")]


def csv_header(path: str) -> list[str] | None:
    """The columns of a CSV's header row (stripped); None when it cannot be read as UTF-8 CSV (the
    run says why) or has no header."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            row = next(_csv.reader(f), None)
    except (OSError, UnicodeDecodeError, _csv.Error):
        return None
    return [h.strip() for h in row] if row is not None else None


def npz_features(path: str, names: list[str], label: str, features: str | None) -> str:
    """The .npz array holding the features: `features`, else "x" or "X", else the only other array."""
    if features is not None:
        return features
    rest = [k for k in names if k != label]
    found = next((k for k in FEATURE_NAMES if k in rest), rest[0] if len(rest) == 1 else None)
    if found is None:
        raise OpError(f"{shown(path)}: which array holds the features? (arrays: {', '.join(names) or 'none'})",
                      field="path", hint='name it: features = "..."')
    return found


def name_problems(path: str, label: str, features: str | None) -> list[OpError]:
    """Problems with the names `arrays()` is given for this file: its kind, the label, the features."""
    name = shown(path)
    suffix = Path(path).suffix.lower()
    try:
        if suffix == ".npz":
            names = npz_names(path)
            if label not in names:
                return [OpError(f"{name}: no array {label!r} (arrays: {', '.join(names) or 'none'})", field="label",
                                hint=did_you_mean(label, names))]
            if features is not None and features not in names:
                return [OpError(f"{name}: no array {features!r} (arrays: {', '.join(names)})", field="features",
                                hint=did_you_mean(features, names))]
            npz_features(path, names, label, features)
        elif suffix == ".csv":
            if features is not None:
                return [OpError("`features` names an array of a .npz file; a CSV's features are all its other "
                                "columns", field="features")]
            header = csv_header(path)
            if header is not None and label not in header:
                return [OpError(f"{name}:1: no column {label!r} (columns: {', '.join(header)})", field="label",
                                hint=did_you_mean(label, header))]
        else:
            return [OpError(f"{name}: expected a .npz or .csv file", field="path")]
    except OpError as e:
        return [e]
    return []
