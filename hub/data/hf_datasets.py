"""Hugging Face ``datasets`` objects as training and evaluation data, in one place.

Every ``fine_tune``, ``pretrain`` and ``evaluate`` (and ``hub train`` recipes) takes a
``datasets.Dataset``, a ``DatasetDict``, an ``IterableDataset`` or an
``IterableDatasetDict`` where it takes a file or a list. This module turns such an object
into what the existing readers already take: a list of plain dicts (:class:`DatasetRecords`),
so every check a file's rows get (texts non-empty, labels usable, paths present) runs on
the dataset's rows too, and a bad row is named by the dataset, split and row.

Why one module: the readers of each modality (``hub.data.read_records``, the vision, speech,
text and recsys readers) stay as they are and call :func:`maybe_records` first; the Pipeline
base resolves a ``DatasetDict``'s splits for every task (:func:`resolve_splits`), so a
third-party task gets the same behaviour.

What a row becomes:

* a ``ClassLabel`` value becomes its name (``0`` -> ``"neg"``), a list of ``ClassLabel``
  (``ner_tags``) a list of names; a ``timestamp`` value seconds since 1970 (an int);
* an ``Image`` value becomes the encoded bytes (or the file path) of the image: the column is
  cast to ``Image(decode=False)``, so Hub's own image reader decodes it (EXIF, modes, the
  pixel limit) exactly as it decodes a file; a decoded PIL image (a dataset whose features are
  unknown) is passed as it is;
* an ``Audio`` value becomes the bytes (or path) of the audio file: the column is cast to
  ``Audio(decode=False)``, so no ``torchcodec`` is needed (``datasets`` 4+ decodes audio with
  it) and Hub's audio reader decodes and resamples it; an already decoded
  ``{"array", "sampling_rate"}`` dict is passed as it is.
* When a column a task reads by default is absent, the one column of the matching feature
  type stands in for it: ``image`` (an ``Image`` column), ``audio`` (``Audio``), ``label``
  (``ClassLabel``), ``tags`` (a list of ``ClassLabel``), ``text`` (a string column); with
  two candidates none is chosen and the task's ``text_field=`` / ``label_field=`` (or a
  recipe's ``columns:``) names it.

Splits of a ``DatasetDict``: training reads ``train``; evaluation during training reads
``validation`` (or ``valid``, ``val``, ``dev``, ``eval``) when ``eval`` is not given;
``evaluate`` reads ``test`` first, then the validation names (the order of Hugging Face's
``evaluate`` evaluator). ``split=`` (and ``eval_split=``) name others.

Streaming (``IterableDataset``): the Trainer needs the number of examples and random
access (the seeded, resumable sampler), so a stream is read once, in order, up to
``max_rows`` rows (default :data:`MAX_STREAM_ROWS`, ``HUB_MAX_STREAM_ROWS``); a longer stream
is a :class:`~hub.errors.DataError` saying to bound it (``ds.take(n)``) or raise the limit.
Nothing is materialised before that check: rows are read one at a time.

``datasets`` is recognised by the module of the object's type, so nothing here imports it
unless the caller passed one of its objects (it is an optional extra: ``hub-sdk[datasets]``).
"""

from __future__ import annotations

import calendar
import datetime
import os
from collections.abc import Iterable, Mapping
from typing import Any

from hub.errors import ConfigError, DataError

#: the default bound on the rows read from a streaming dataset (HUB_MAX_STREAM_ROWS)
MAX_STREAM_ROWS = 100_000
#: the extra that installs the datasets library
DATASETS_EXTRA = "pip install 'hub-sdk[datasets]'"

TRAIN_SPLITS = ("train", "training")
EVAL_SPLITS = ("validation", "valid", "val", "dev", "eval", "evaluation")
TEST_SPLITS = ("test", "testing", "eval", "evaluation", "validation", "val", "valid", "dev")  # evaluate's order

_KINDS = {"Dataset": "dataset", "DatasetDict": "dict", "IterableDataset": "iterable",
          "IterableDatasetDict": "dict"}


def dataset_kind(obj: Any) -> str | None:
    """``"dataset"``, ``"iterable"`` or ``"dict"`` for a ``datasets`` object, else None.

    Read from the type's module name (``datasets.*``), so a caller without the library
    installed never imports it."""
    for klass in type(obj).__mro__:
        module = getattr(klass, "__module__", "") or ""
        if (module == "datasets" or module.startswith("datasets.")) and klass.__name__ in _KINDS:
            return _KINDS[klass.__name__]
    return None


def is_dataset(obj: Any) -> bool:
    """Whether ``obj`` is a ``datasets`` Dataset, IterableDataset or (Iterable)DatasetDict."""
    return dataset_kind(obj) is not None


class DatasetRecords(list):
    """The rows of a ``datasets`` object as plain dicts, with what names them.

    A ``list`` (so every reader takes it as it takes a list of dicts) whose :attr:`where`
    names the dataset in error messages and whose :meth:`describe` is what the model card
    records.

    Attributes:
        name: the dataset's name (its ``info.dataset_name`` or builder), or None.
        split: the split read, or None.
        where: ``"dataset 'imdb' (split 'train')"``, for messages.
    """

    def __init__(self, rows: Iterable[dict[str, Any]], *, name: str | None, split: str | None) -> None:
        super().__init__(rows)
        self.name, self.split = name, split
        label = f"dataset {name!r}" if name else "the dataset"
        self.where = f"{label} (split {split!r})" if split else label

    def describe(self) -> dict[str, Any]:
        """``{"dataset", "split", "rows"}`` for the model card."""
        return {"dataset": self.name, "split": self.split, "rows": len(self)}


def maybe_records(source: Any, *, role: str = "train", split: str | None = None,
                  columns: Mapping[str, str] | None = None, max_rows: int | None = None) -> Any:
    """``source`` itself, or its rows as :class:`DatasetRecords` when it is a ``datasets`` object.

    Every reader calls this first, so a reader given a dataset directly (not through
    ``fine_tune``) reads it too.

    Args:
        source: anything a reader takes.
        role: ``"train"``, ``"eval"`` or ``"test"``: which split of a DatasetDict is read when
            ``split`` is None (see the module docstring).
        split: the split of a DatasetDict to read.
        columns: ``{field the task reads: dataset column}``, e.g. ``{"text": "review_body"}``.
        max_rows: the bound on a stream's rows (default ``HUB_MAX_STREAM_ROWS`` or 100,000).

    Returns:
        ``source`` unchanged, or a :class:`DatasetRecords`.

    Raises:
        DataError: no such split; a stream longer than ``max_rows``; a ``columns`` entry names
            a column the dataset lacks.
    """
    kind = dataset_kind(source)
    if kind is None:
        if split is not None:
            raise ConfigError(f"split={split!r} selects a split of a datasets.DatasetDict, but the data is a "
                              f"{type(source).__name__}; pass the DatasetDict, or drop split=.")
        return source
    if kind == "dict":
        source, split = pick_split(source, role, split)
    elif split is not None and getattr(source, "split", None) not in (None, split):
        raise ConfigError(f"split={split!r}, but the dataset given is already the {str(source.split)!r} split; "
                          "pass the DatasetDict, or drop split=.")
    return to_records(source, columns=columns, max_rows=max_rows, split=split)


def training_records(train: Any, eval: Any = None, *, split: str | None = None, eval_split: str | None = None,
                     columns: Mapping[str, str] | None = None, eval_columns: Mapping[str, str] | None = None,
                     name: str | None = None, eval_name: str | None = None) -> tuple[Any, Any]:
    """What a training verb reads: :func:`resolve_splits`, then each datasets object's rows
    (:func:`to_records`, the split it came from named); other data passes through."""
    train_kind, eval_kind = dataset_kind(train), dataset_kind(eval)
    train_split = eval_from = None
    if train_kind == "dict":
        whole, (train, train_split) = train, pick_split(train, "train", split)
        if eval is None:
            eval_from = eval_split if eval_split is not None else next(
                (n for n in EVAL_SPLITS if n in {str(k) for k in whole}), None)
            eval = pick_split(whole, "eval", eval_from)[0] if eval_from is not None else None
            eval_kind = None
            eval_name = eval_name or name
    elif split is not None:
        resolve_splits(train, eval, split=split)  # the error naming the misuse
    if eval_split is not None and "dict" not in (train_kind, eval_kind):
        resolve_splits(train, eval, eval_split=eval_split)
    if eval_kind == "dict":
        eval, eval_from = pick_split(eval, "eval", eval_split)
    if dataset_kind(train) is not None:
        train = to_records(train, columns=columns, name=name, split=train_split)
    if dataset_kind(eval) is not None:
        eval = to_records(eval, columns=eval_columns if eval_columns is not None else columns, name=eval_name,
                          split=eval_from)
    return train, eval


def pick_split(dataset_dict: Any, role: str, split: str | None = None) -> tuple[Any, str]:
    """The split of a DatasetDict that ``role`` reads (or ``split``), and its name.

    Raises:
        DataError: ``split`` is not among the splits, or no split suits the role; the message
            lists the splits and how to choose one.
    """
    names = [str(name) for name in dataset_dict]
    if split is not None:
        if split not in names:
            raise DataError(f"The DatasetDict has no split {split!r}; its splits are {names}. Pass one of them "
                            "(split=...).")
        return dataset_dict[split], split
    wanted = {"train": TRAIN_SPLITS, "eval": EVAL_SPLITS, "test": TEST_SPLITS}[role]
    for name in wanted:
        if name in names:
            return dataset_dict[name], name
    if len(names) == 1 and role != "eval":
        return dataset_dict[names[0]], names[0]
    what = {"train": "training", "eval": "evaluation during training", "test": "evaluation"}[role]
    raise DataError(f"Which split of the DatasetDict is for {what}? It has {names}, none named "
                    f"{' / '.join(wanted[:3])}. Pass the split itself (dataset[{names[0]!r}]) or split=NAME.")


def eval_split_of(dataset_dict: Any, eval_split: str | None = None) -> Any | None:
    """The validation split of a DatasetDict (or ``eval_split``), None when it has none."""
    if eval_split is not None:
        return pick_split(dataset_dict, "eval", eval_split)[0]
    names = {str(name) for name in dataset_dict}
    found = next((name for name in EVAL_SPLITS if name in names), None)
    return dataset_dict[found] if found else None


def resolve_splits(train: Any, eval: Any = None, *, split: str | None = None,
                   eval_split: str | None = None) -> tuple[Any, Any]:
    """The ``(train, eval)`` a training verb reads, DatasetDicts resolved to their splits.

    A DatasetDict as ``train`` gives its ``train`` split (or ``split``) and, when ``eval`` is
    None, its validation split (or ``eval_split``) as ``eval``; a DatasetDict as ``eval``
    gives its validation split. Anything else passes through unchanged.

    Raises:
        ConfigError: ``split`` / ``eval_split`` given for data that is not a DatasetDict.
        DataError: no such split.
    """
    train_kind, eval_kind = dataset_kind(train), dataset_kind(eval)
    if split is not None and train_kind != "dict":
        raise ConfigError(f"split={split!r} selects the training split of a datasets.DatasetDict, but the training "
                          f"data is a {type(train).__name__}; pass the DatasetDict, or drop split=.")
    if eval_split is not None and "dict" not in (train_kind, eval_kind):
        raise ConfigError(f"eval_split={eval_split!r} selects a split of a datasets.DatasetDict, but neither the "
                          "training nor the evaluation data is one; drop eval_split=.")
    if train_kind == "dict":
        whole = train
        train, _ = pick_split(whole, "train", split)
        if eval is None:
            eval = eval_split_of(whole, eval_split)
            eval_kind = None
    if eval_kind == "dict":
        eval = pick_split(eval, "eval", eval_split)[0]
    return train, eval


def to_records(dataset: Any, *, columns: Mapping[str, str] | None = None, max_rows: int | None = None,
               name: str | None = None, split: str | None = None) -> DatasetRecords:
    """The rows of a Dataset or IterableDataset as plain dicts (see the module docstring).

    ``name`` and ``split`` name the dataset in messages and the model card (default: its
    ``info.dataset_name`` or builder name, and its ``split``).

    Raises:
        DataError: a stream with more than ``max_rows`` rows; a ``columns`` entry naming a
            column the dataset lacks.
    """
    kind = dataset_kind(dataset)
    if kind not in ("dataset", "iterable"):
        raise DataError(f"Expected a datasets.Dataset or IterableDataset, got {type(dataset).__name__}.")
    name = name or _name_of(dataset)
    split = split or _split_of(dataset)
    features = dict(getattr(dataset, "features", None) or {})
    dataset = _undecoded(dataset, features)
    names = list(features) or None
    convert = {column: _converter(feature) for column, feature in features.items()}
    convert = {k: f for k, f in convert.items() if f is not None}
    aliases = _aliases(features)
    mapping = dict(columns or {})
    where = DatasetRecords([], name=name, split=split).where
    if names is not None:
        for field, column in mapping.items():
            if column not in names:
                raise DataError(f"columns: {field}: {column!r} is not a column of {where}; its columns are {names}.")
    if kind == "iterable":
        limit = _stream_limit(max_rows)
    else:
        limit = None
    rows = []
    for index, row in enumerate(dataset):
        if limit is not None and index >= limit:
            raise DataError(
                f"{where} is a stream (IterableDataset) with more than {limit:,} rows. Training needs the number of "
                "examples and random access (a seeded, resumable order), so Hub reads a stream into memory, at most "
                f"{limit:,} rows: bound it (dataset.take(N)), load it without streaming=True, or raise the limit "
                "(HUB_MAX_STREAM_ROWS).")
        record = {key: (convert[key](value) if key in convert else _plain(value)) for key, value in row.items()}
        for field, column in aliases.items():
            record.setdefault(field, record.get(column))
        for field, column in mapping.items():
            if column not in record:
                raise DataError(f"columns: {field}: {column!r} is not a column of {where}; row {index} has "
                                f"{sorted(record)}.")
            record[field] = record[column]
        rows.append(record)
    return DatasetRecords(rows, name=name, split=split)


def describe_data(source: Any) -> dict[str, Any] | None:
    """What the model card says about training data: a dataset's name, split and rows, a
    file's name, or a list's length (None for nothing)."""
    from pathlib import Path

    if source is None:
        return None
    if isinstance(source, DatasetRecords):
        return source.describe()
    kind = dataset_kind(source)
    if kind == "dict":
        return {"dataset": _name_of(next(iter(source.values()), None)), "splits": [str(s) for s in source]}
    if kind is not None:
        described = {"dataset": _name_of(source), "split": _split_of(source)}
        if kind == "dataset":
            described["rows"] = len(source)
        return described
    if isinstance(source, (str, Path)):
        return {"file": Path(source).name}
    if isinstance(source, (list, tuple)):
        return {"list": len(source)}
    return {"type": type(source).__name__}


# -- internals ---------------------------------------------------------------------------
def _name_of(dataset: Any) -> str | None:
    info = getattr(dataset, "info", None)
    return (getattr(info, "dataset_name", None) or getattr(info, "builder_name", None)) if info else None


def _split_of(dataset: Any) -> str | None:
    split = getattr(dataset, "split", None)
    return str(split) if split is not None else None


def _stream_limit(max_rows: int | None) -> int:
    if max_rows is not None:
        if not isinstance(max_rows, int) or isinstance(max_rows, bool) or max_rows < 1:
            raise ConfigError(f"max_rows must be a positive integer, got {max_rows!r}.")
        return max_rows
    raw = os.environ.get("HUB_MAX_STREAM_ROWS")
    if raw is None:
        return MAX_STREAM_ROWS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"HUB_MAX_STREAM_ROWS must be a positive integer, got {raw!r}.")
    return value


def _feature_type(feature: Any) -> str:
    return type(feature).__name__


def _undecoded(dataset: Any, features: dict[str, Any]) -> Any:
    """The dataset with its Image and Audio columns cast to ``decode=False`` (bytes/path dicts)."""
    for column, feature in features.items():
        kind = _feature_type(feature)
        if kind in ("Image", "Audio") and getattr(feature, "decode", False):
            import datasets

            undecoded = datasets.Image(decode=False) if kind == "Image" else datasets.Audio(decode=False)
            dataset = dataset.cast_column(column, undecoded)
    return dataset


def _converter(feature: Any) -> Any:
    kind = _feature_type(feature)
    if kind == "ClassLabel":
        return lambda value: _class_name(feature, value)
    if kind in ("List", "Sequence", "LargeList") and _feature_type(getattr(feature, "feature", None)) == "ClassLabel":
        inner = feature.feature
        return lambda values: None if values is None else [_class_name(inner, v) for v in values]
    if kind in ("Image", "Audio"):
        return _media
    if kind == "Value" and str(getattr(feature, "dtype", "")).startswith("timestamp"):
        return _seconds
    return None


def _class_name(feature: Any, value: Any) -> Any:
    """A ClassLabel's name; -1 (datasets' "no label", e.g. a test split) and None stay None."""
    if value is None or value == -1:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return feature.int2str(value)
    return value


def _media(value: Any) -> Any:
    """An undecoded Image/Audio value's bytes (or path); decoded values pass through."""
    if isinstance(value, Mapping) and "bytes" in value and "array" not in value:
        return value.get("bytes") or value.get("path")
    if type(value).__module__.startswith("torchcodec"):  # a decoded AudioDecoder (features were unknown)
        samples = value.get_all_samples()
        data = samples.data.numpy()
        return {"array": data.mean(axis=0) if data.ndim == 2 else data, "sampling_rate": samples.sample_rate}
    return value


def _seconds(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:  # arrow timestamps without a zone are UTC
            return calendar.timegm(value.utctimetuple())
        return int(value.timestamp())
    return value


def _plain(value: Any) -> Any:
    """A value of a column without a known feature: an encoded ``{"bytes", "path"}`` dict (an
    Image or Audio value whose features a stream did not declare) becomes its bytes or path."""
    if isinstance(value, Mapping) and value and set(value) <= {"bytes", "path"}:
        return value.get("bytes") or value.get("path")
    return value


def _aliases(features: dict[str, Any]) -> dict[str, str]:
    """``{default field: the one column of its feature type}`` for fields the dataset lacks."""
    def of(predicate: Any) -> list[str]:
        return [column for column, feature in features.items() if predicate(feature)]

    candidates = {
        "image": of(lambda f: _feature_type(f) == "Image"),
        "audio": of(lambda f: _feature_type(f) == "Audio"),
        "label": of(lambda f: _feature_type(f) == "ClassLabel"),
        "tags": of(lambda f: _feature_type(f) in ("List", "Sequence", "LargeList")
                   and _feature_type(getattr(f, "feature", None)) == "ClassLabel"),
        "text": of(lambda f: _feature_type(f) == "Value"
                   and str(getattr(f, "dtype", "")) in ("string", "large_string")),
    }
    return {field: found[0] for field, found in candidates.items() if field not in features and len(found) == 1}


def load_from_spec(spec: Mapping[str, Any], *, base: Any = None, source: str = "config") -> Any:
    """``datasets.load_dataset`` for a recipe's ``{dataset: NAME_OR_PATH, name:, split:, data_files:,
    streaming:}`` entry (``columns:`` is applied when the rows are read); returns what it loads.

    A relative ``dataset`` or ``data_files`` path is taken from ``base`` (the recipe's folder)
    when it exists there. Local folders and files load offline; a Hub name loads from the
    Hugging Face cache when ``HF_DATASETS_OFFLINE=1`` / ``HF_HUB_OFFLINE=1``.

    Raises:
        MissingExtraError: the datasets library is not installed.
        DataError: the dataset cannot be loaded (the library's message, with the spec).
    """
    from pathlib import Path

    require_datasets(f"{source}: 'dataset:'")
    import datasets

    path = str(spec["dataset"])

    def local(value: str) -> str:
        if base is not None and not os.path.isabs(os.path.expanduser(value)):
            candidate = Path(base) / os.path.expanduser(value)
            if candidate.exists():
                return str(candidate)
        return os.path.expanduser(value)

    path = local(path)
    data_files = spec.get("data_files")
    if isinstance(data_files, str):
        data_files = local(data_files)
    elif isinstance(data_files, list):
        data_files = [local(f) for f in data_files]
    elif isinstance(data_files, Mapping):
        data_files = {k: (local(v) if isinstance(v, str) else [local(f) for f in v]) for k, v in data_files.items()}
    options = {k: v for k, v in (("name", spec.get("name")), ("split", spec.get("split")),
                                 ("data_files", data_files), ("revision", spec.get("revision"))) if v is not None}
    try:
        loaded = datasets.load_dataset(path, streaming=bool(spec.get("streaming", False)), **options)
    except Exception as exc:  # the library raises many types (FileNotFoundError, ConnectionError, ValueError)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:400]
        raise DataError(f"{source}: cannot load dataset {spec['dataset']!r} ({type(exc).__name__}: {first}). A local "
                        "folder or file loads offline; a Hugging Face dataset name needs the network once (or the "
                        "cache, with HF_DATASETS_OFFLINE=1).") from None
    return loaded


def require_datasets(what: str) -> None:
    """Raise MissingExtraError naming the extra when the datasets library is not installed."""
    import importlib.util

    from hub.errors import MissingExtraError

    if importlib.util.find_spec("datasets") is None:
        raise MissingExtraError(f"{what} needs the datasets library, which is not installed: {DATASETS_EXTRA}")


__all__ = ["DatasetRecords", "dataset_kind", "describe_data", "eval_split_of", "is_dataset", "load_from_spec",
           "maybe_records", "pick_split", "require_datasets", "resolve_splits", "to_records", "training_records"]
