"""Interaction data: reading ratings files, mapping string ids to indices, and splits.

Readers take CSV/TSV (header row, or MovieLens' ``u.data`` without one), MovieLens'
``ratings.dat`` (``user::item::rating::timestamp``), Parquet (needs ``pyarrow``), a list
of dicts or ``(user, item[, rating[, timestamp]])`` tuples, a dict of columns, or a Hugging
Face ``datasets.Dataset`` (:mod:`hub.data.hf_datasets`; timestamp columns as seconds). Ids are
kept as strings, spelled by :func:`normalize_id` everywhere (training, saving, serving,
histories: ``"42"``, ``42``, ``42.0`` and ``" 42 "`` are the same user), and mapped to
dense indices by an :class:`IdMap` that is saved with the model. Timestamps must be finite
and fit in int64. Nothing here unpickles anything.

Duplicate (user, item) rows are handled by ``duplicates=``: ``"last"`` (default) keeps the
latest row (by timestamp, then by file order), ``"first"`` the earliest, ``"keep"`` keeps
them all (repeat consumption, for sequences), ``"error"`` refuses the file.
"""

from __future__ import annotations

import csv
import io
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from hub.data.readers import read_text
from hub.errors import DataError, InvalidInputError

USER_COLUMNS = ("user", "user_id", "userid", "userId", "uid", "customer_id")
ITEM_COLUMNS = ("item", "item_id", "itemid", "movieId", "movie_id", "movieid", "iid", "product_id")
RATING_COLUMNS = ("rating", "ratings", "score", "value")
TIME_COLUMNS = ("timestamp", "time", "ts", "datetime", "date")
DUPLICATE_POLICIES = ("last", "first", "keep", "error")


def normalize_id(value: Any, what: str = "id") -> str:
    """The one spelling of a user or item id, used by training, saving, serving and histories.

    * a string: stripped of surrounding whitespace (``"  padded  "`` is ``"padded"``); other
      than that kept as it is (``"007"`` stays ``"007"``, ``"1.0"`` stays ``"1.0"``);
    * an integer (Python or NumPy): its decimal string (``1`` is ``"1"``);
    * a float: an integral one is its integer's string (``1.0`` is ``"1"``, as a float column
      of integer ids reads back); any other finite float is its ``repr`` (``1.5`` is ``"1.5"``);
    * refused (:class:`~hub.errors.InvalidInputError`): booleans, NaN/inf, empty strings,
      None, bytes, containers and other types.
    """
    if isinstance(value, str):
        key = value.strip()
        if key:
            return str(key)
        problem = "is an empty string"
    elif isinstance(value, bool) or type(value).__name__ == "bool_":
        problem = "is a boolean; ids are strings or integers"
    elif isinstance(value, numbers.Integral):
        return str(int(value))
    elif isinstance(value, numbers.Real):
        number = float(value)
        if math.isfinite(number):
            return str(int(number)) if number.is_integer() else repr(number)
        problem = "is not a finite number"
    else:
        problem = f"is a {type(value).__name__}; ids are strings or integers"
    raise InvalidInputError(f"{what} {value!r:.40} {problem}.")


class IdMap:
    """Ids (:func:`normalize_id`) <-> dense indices 0..n-1, in first-seen order."""

    def __init__(self, ids: Iterable[Any] = ()) -> None:
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        for value in ids:
            self.add(value)

    def add(self, value: Any) -> int:
        key = normalize_id(value)
        found = self.index.get(key)
        if found is None:
            found = self.index[key] = len(self.ids)
            self.ids.append(key)
        return found

    def get(self, value: Any) -> int | None:
        """The index of ``value`` (None when unknown); an unusable id raises InvalidInputError."""
        return self.index.get(normalize_id(value))

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, value: Any) -> bool:
        return normalize_id(value) in self.index


@dataclass
class Interactions:
    """Rows of (user, item[, rating][, timestamp]) as index arrays plus the id maps."""

    users: np.ndarray  # (N,) int64 indices into user_ids
    items: np.ndarray  # (N,) int64 indices into item_ids
    ratings: np.ndarray | None  # (N,) float32, explicit feedback
    timestamps: np.ndarray | None  # (N,) int64 (seconds or any increasing order)
    user_ids: IdMap
    item_ids: IdMap
    source: str = "data"

    def __len__(self) -> int:
        return int(self.users.shape[0])

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    def subset(self, rows: np.ndarray) -> Interactions:
        """The rows selected by a boolean mask or an index array (same id maps)."""
        pick = lambda a: None if a is None else a[rows]
        return replace(self, users=self.users[rows], items=self.items[rows], ratings=pick(self.ratings),
                       timestamps=pick(self.timestamps))

    def chronological_order(self) -> np.ndarray:
        """Row order by user, then timestamp, then original row (stable)."""
        keys = [np.arange(len(self))]
        if self.timestamps is not None:
            keys.append(self.timestamps)
        keys.append(self.users)
        return np.lexsort(keys)

    def sequences(self) -> list[np.ndarray]:
        """Each user's items in time order (index = user index; empty for users without rows)."""
        order = self.chronological_order()
        users, items = self.users[order], self.items[order]
        bounds = np.searchsorted(users, np.arange(self.num_users + 1))
        return [items[bounds[u]:bounds[u + 1]] for u in range(self.num_users)]

    def csr(self) -> tuple[np.ndarray, np.ndarray]:
        """(indptr, items): each user's items in time order, as compressed rows."""
        order = self.chronological_order()
        users = self.users[order]
        indptr = np.searchsorted(users, np.arange(self.num_users + 1)).astype(np.int64)
        return indptr, self.items[order].astype(np.int64)


def read_interactions(source: Any, *, user_col: str | None = None, item_col: str | None = None,
                      rating_col: str | None = None, time_col: str | None = None,
                      duplicates: str = "last", user_ids: IdMap | None = None,
                      item_ids: IdMap | None = None) -> Interactions:
    """Read interactions from a file or Python data; see the module docstring.

    Column names are found among common spellings (``userId``, ``user_id``, ``movieId``,
    ``rating``, ``timestamp``...) unless given. Passing existing ``user_ids``/``item_ids``
    maps reuses their indices (new ids are appended).
    """
    if duplicates not in DUPLICATE_POLICIES:
        raise DataError(f"duplicates must be one of {DUPLICATE_POLICIES}, got {duplicates!r}.")
    if isinstance(source, Interactions):
        return _deduplicate(remap(source, user_ids, item_ids), duplicates, source.source)
    columns, where = _read_columns(source)
    if not columns or not any(len(v) for v in columns.values()):
        raise DataError(f"{where} holds no interactions; it needs rows of user, item "
                        "(and optionally rating and timestamp).")
    names = list(columns)
    user_key = _pick(names, user_col, USER_COLUMNS, "user", where, required=True)
    item_key = _pick(names, item_col, ITEM_COLUMNS, "item", where, required=True)
    rating_key = _pick(names, rating_col, RATING_COLUMNS, "rating", where, required=False)
    time_key = _pick(names, time_col, TIME_COLUMNS, "timestamp", where, required=False)
    n = len(columns[user_key])
    if n == 0:
        raise DataError(f"{where} has a header but no rows of interactions.")
    users_map = user_ids if user_ids is not None else IdMap()
    items_map = item_ids if item_ids is not None else IdMap()
    users = np.empty(n, dtype=np.int64)
    items = np.empty(n, dtype=np.int64)
    for row, (u, i) in enumerate(zip(columns[user_key], columns[item_key])):
        if _blank(u) or _blank(i):
            raise DataError(f"{where}, {_row_name(where, row)}: empty {'user' if _blank(u) else 'item'} id.")
        try:
            users[row] = users_map.add(normalize_id(u, "user id"))
            items[row] = items_map.add(normalize_id(i, "item id"))
        except InvalidInputError as exc:
            raise DataError(f"{where}, {_row_name(where, row)}: {exc} Fix or drop that row.") from None
    ratings = _numbers(columns[rating_key], where, rating_key, np.float32) if rating_key else None
    if ratings is not None and not np.isfinite(ratings).all():
        bad = int(np.flatnonzero(~np.isfinite(ratings))[0])
        raise DataError(f"{where}, {_row_name(where, bad)}: rating {columns[rating_key][bad]!r} is not finite.")
    timestamps = _timestamps(columns[time_key], where, time_key) if time_key else None
    data = Interactions(users, items, ratings, timestamps, users_map, items_map, source=where)
    return _deduplicate(data, duplicates, where)


def remap(data: Interactions, user_ids: IdMap | None, item_ids: IdMap | None) -> Interactions:
    """The same rows indexed by other id maps (ids they lack are appended to them)."""
    users, items = data.users, data.items
    if user_ids is not None and user_ids is not data.user_ids:
        users = np.array([user_ids.add(u) for u in data.user_ids.ids], dtype=np.int64)[data.users]
    if item_ids is not None and item_ids is not data.item_ids:
        items = np.array([item_ids.add(i) for i in data.item_ids.ids], dtype=np.int64)[data.items]
    return replace(data, users=users, items=items,
                   user_ids=user_ids if user_ids is not None else data.user_ids,
                   item_ids=item_ids if item_ids is not None else data.item_ids)


# -- sources ------------------------------------------------------------------------------
def _read_columns(source: Any) -> tuple[dict[str, list[Any]], str]:
    from hub.data.hf_datasets import maybe_records

    source = maybe_records(source)  # a datasets.Dataset: rows as dicts (timestamps as seconds)
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise DataError(f"Interactions file {str(path)!r} does not exist.")
        if path.stat().st_size == 0:
            raise DataError(f"{path} is empty; an interactions file needs rows of user, item "
                            "(and optionally rating and timestamp).")
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            return _read_parquet(path), str(path)
        text = read_text(path)  # UTF-8 (a byte-order mark skipped); other bytes: DataError with the line
        if suffix == ".dat" or "::" in text.split("\n", 1)[0]:
            return _read_movielens_dat(text, path), str(path)
        return _read_delimited(text, path), str(path)
    if isinstance(source, Mapping):
        lengths = {len(v) for v in source.values()}
        if len(lengths) > 1:
            raise DataError(f"The columns of the interactions dict differ in length: {sorted(lengths)}.")
        return {str(k): list(v) for k, v in source.items()}, "the interactions dict"
    if isinstance(source, Iterable) and not isinstance(source, (bytes, str)):
        rows = list(source)
        if not rows:
            return {}, "the interactions list"
        if all(isinstance(r, Mapping) for r in rows):
            keys = list(dict.fromkeys(k for r in rows for k in r))
            return {k: [r.get(k) for r in rows] for k in keys}, getattr(source, "where", "the interactions list")
        if all(isinstance(r, (tuple, list)) and 2 <= len(r) <= 4 for r in rows):
            width = max(len(r) for r in rows)
            if any(len(r) != width for r in rows):
                raise DataError("The interaction tuples differ in length; use (user, item[, rating[, timestamp]]).")
            keys = ("user", "item", "rating", "timestamp")[:width]
            return {k: [r[j] for r in rows] for j, k in enumerate(keys)}, "the interactions list"
        bad = next(i for i, r in enumerate(rows) if not isinstance(r, (Mapping, tuple, list)))
        raise DataError(f"Interaction {bad} is {rows[bad]!r:.60}; expected a dict or a "
                        "(user, item[, rating[, timestamp]]) tuple.")
    raise DataError(f"Cannot read interactions from a {type(source).__name__}; pass a CSV/TSV/Parquet/"
                    "MovieLens file path, a list of dicts or tuples, or a dict of columns.")


def _read_delimited(text: str, path: Path) -> dict[str, list[Any]]:
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first else ";" if first.count(";") > first.count(",") else ","
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise DataError(f"{path} holds no rows.")
    header = [c.strip() for c in rows[0]]
    if all(_is_number(c) for c in header):  # MovieLens u.data: user item rating timestamp, no header
        header = ["user", "item", "rating", "timestamp"][:len(header)]
        if len(header) < 2:
            raise DataError(f"{path}: a header-less file needs at least user and item columns.")
        body, offset = rows, 1
    else:
        body, offset = rows[1:], 2
    width = len(header)
    for number, row in enumerate(body):
        if len(row) != width:
            raise DataError(f"{path}, line {number + offset}: {len(row)} fields, but the header has {width}.")
    return {name: [row[j].strip() for row in body] for j, name in enumerate(header)}


def _read_movielens_dat(text: str, path: Path) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {"user": [], "item": [], "rating": [], "timestamp": []}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("::")
        if len(parts) not in (2, 3, 4):
            raise DataError(f"{path}, line {number}: expected user::item[::rating[::timestamp]], got {line!r:.60}.")
        for key, value in zip(columns, parts):
            columns[key].append(value.strip())
    width = min((len(v) for v in columns.values() if v), default=0)
    return {k: v for k, v in columns.items() if len(v) == len(columns["user"]) and v} if width else {}


def _read_parquet(path: Path) -> dict[str, list[Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"Reading {path} needs pyarrow: pip install pyarrow (or hub-sdk[recsys-bench]).") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataError(f"{path} is not a readable Parquet file: {exc}") from None
    return {name: table.column(name).to_pylist() for name in table.column_names}


# -- helpers ------------------------------------------------------------------------------
def _pick(names: Sequence[str], given: str | None, spellings: Sequence[str], what: str, where: str, *,
          required: bool) -> str | None:
    if given is not None:
        if given not in names:
            raise DataError(f"{where} has no column {given!r} ({what}); its columns are {_visible(names)}.")
        return given
    lowered = {n.lower(): n for n in names}
    for spelling in spellings:
        if spelling.lower() in lowered:
            return lowered[spelling.lower()]
    if required:
        raise DataError(f"{where} has no {what} column: expected one of {list(spellings)} (or pass "
                        f"{what if what != 'timestamp' else 'time'}_col=...); its columns are {_visible(names)}.")
    return None


def _visible(names: Sequence[str]) -> list[str]:
    return list(names)


def _row_name(where: str, row: int) -> str:
    return f"row {row}" if where.startswith("the ") else f"data row {row + 1}"


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or \
        (isinstance(value, float) and np.isnan(value))


_INT64 = np.iinfo(np.int64)


def _timestamps(values: list[Any], where: str, column: str) -> np.ndarray:
    """int64 timestamps; integers (and integer strings) exactly, other numbers truncated. A value
    that is not finite or does not fit in int64 (``1e30``) is refused: cast, it would wrap to a
    meaningless time and silently reorder the user's history."""
    out = np.empty(len(values), dtype=np.int64)
    for row, value in enumerate(values):
        number: Any = value
        try:
            if isinstance(value, bool) or value is None:
                raise ValueError
            if isinstance(value, str):
                text = value.strip()
                number = int(text) if text.lstrip("+-").isdigit() else float(text)
            elif isinstance(value, numbers.Integral):
                number = int(value)
            else:
                number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise DataError(f"{where}, {_row_name(where, row)}: {column} {value!r:.40} is not a number. "
                            "Fix or drop that row (or pass time_col=... to use another column).") from None
        if isinstance(number, float):
            if not math.isfinite(number):
                raise DataError(f"{where}, {_row_name(where, row)}: {column} {value!r:.40} is not a finite "
                                "number. Fix or drop that row.")
            fits = -2.0**63 <= number < 2.0**63
        else:
            fits = _INT64.min <= number <= _INT64.max
        if not fits:
            raise DataError(f"{where}, {_row_name(where, row)}: {column} {value!r:.40} is out of range (a timestamp "
                            "must fit in a signed 64-bit integer, e.g. seconds or milliseconds since 1970). Fix or "
                            "drop that row.")
        out[row] = int(number)
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _numbers(values: list[Any], where: str, column: str, dtype: Any) -> np.ndarray:
    out = np.empty(len(values), dtype=np.float64)
    for row, value in enumerate(values):
        try:
            if isinstance(value, bool) or value is None:
                raise ValueError
            out[row] = float(value)
        except (TypeError, ValueError):
            raise DataError(f"{where}, {_row_name(where, row)}: {column} {value!r:.40} is not a number. "
                            f"Fix or drop that row (or pass {column.split('_')[0]}_col=None-style "
                            "options to ignore the column).") from None
    return out.astype(dtype)


def _deduplicate(data: Interactions, policy: str, where: str) -> Interactions:
    if policy == "keep" or len(data) == 0:
        return data
    order = data.chronological_order()
    key = data.users[order] * max(1, data.num_items) + data.items[order]
    if policy == "error":
        unique, counts = np.unique(key, return_counts=True)
        if (counts > 1).any():
            dup = int(unique[counts > 1][0])
            width = max(1, data.num_items)
            user, item = data.user_ids.ids[dup // width], data.item_ids.ids[dup % width]
            raise DataError(f"{where}: user {user!r} and item {item!r} appear in {int(counts[counts > 1][0])} rows "
                            "(duplicates='error'); pass duplicates='last', 'first' or 'keep'.")
        return data
    if policy == "last":  # keep the last occurrence in chronological order
        _, first_of_reversed = np.unique(key[::-1], return_index=True)
        keep = order[len(order) - 1 - first_of_reversed]
    else:
        _, first = np.unique(key, return_index=True)
        keep = order[first]
    return data.subset(np.sort(keep))


# -- splits -------------------------------------------------------------------------------
def leave_one_out(data: Interactions, *, min_interactions: int = 3) -> tuple[Interactions, Interactions, Interactions]:
    """Chronological leave-one-out: each user's last item is test, the one before validation.

    Users with fewer than ``min_interactions`` rows stay entirely in training (they have too
    little history to hold any out). Ties in time keep the file order.
    """
    order = data.chronological_order()
    users = data.users[order]
    bounds = np.searchsorted(users, np.arange(data.num_users + 1))
    test_rows, valid_rows = [], []
    for u in range(data.num_users):
        start, end = bounds[u], bounds[u + 1]
        if end - start >= min_interactions:
            test_rows.append(order[end - 1])
            valid_rows.append(order[end - 2])
    held = np.zeros(len(data), dtype=bool)
    held[test_rows] = True
    held[valid_rows] = True
    return data.subset(~held), data.subset(np.sort(np.array(valid_rows, dtype=np.int64))), \
        data.subset(np.sort(np.array(test_rows, dtype=np.int64)))


def random_split(data: Interactions, *, test_fraction: float = 0.2, seed: int = 0) -> tuple[Interactions, Interactions]:
    """A fixed random split of the rows (for rating prediction: RMSE/MAE)."""
    if not 0 < test_fraction < 1:
        raise DataError(f"test_fraction must be in (0, 1), got {test_fraction!r}.")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(data))
    cut = round(len(data) * (1 - test_fraction))
    return data.subset(np.sort(perm[:cut])), data.subset(np.sort(perm[cut:]))
