"""Turn the real image sources of ../shared/data/README.md into plain image files, once.

* ``icons``: Debian icon themes sorted by their context folder (actions, apps, devices,
  mimetypes, places, status) -> an image-classification set whose held-out split is a
  whole theme nobody trained on. Oxygen ships PNGs; Papirus and Breeze ship SVGs, rendered
  here with ``rsvg-convert`` (Debian ``librsvg2-bin``)::

      apt-get install -y oxygen-icon-theme papirus-icon-theme breeze-icon-theme librsvg2-bin
      python -m examples.data_prep_vision icons

  Every icon is stored once (the largest drawing up to 64 px, rendered or resized to
  64x64 RGBA PNG; symlinked aliases of one drawing are kept once), at most
  ``PER_CLASS`` icons per theme and class (seeded choice). Splits, written as
  ``path,label`` CSVs next to the images: ``icons-train.csv`` and ``icons-val.csv``
  (Oxygen + Papirus, split by icon name) and ``icons-test.csv`` (Breeze, held out).
* ``digits``: scikit-learn's 1,797 real handwritten 8x8 digits as an ImageFolder
  (``digits/<split>/<digit>/<n>.png``, grayscale), split 80/20 by a seeded shuffle.

Files go under ``$HUB_DATA_CACHE`` (default ``~/.cache/hub/datasets``) and are reused.
"""

from __future__ import annotations

import csv
import io
import os
import random
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from examples.data_prep import cache_dir
from hub._fs import atomic_write_text

ICONS = Path(os.environ.get("ICON_THEMES_DIR") or "/usr/share/icons")
CLASSES = ("actions", "apps", "devices", "mimetypes", "places", "status")
TRAIN_THEMES = ("oxygen", "Papirus")
TEST_THEME = "breeze"
SIZE = 64
PER_CLASS = 500
VAL_FRACTION = 0.1


def _size_of(folder: str) -> int:
    """'48x48' / '48' -> 48; '@2x' variants and 'symbolic' are not wanted (-1)."""
    if "@" in folder or not folder.split("x")[0].isdigit():
        return -1
    return int(folder.split("x")[0])


def _theme_files(theme: str) -> dict[str, dict[str, Path]]:
    """{class: {icon name: file of its largest drawing <= 64 px}} for one theme."""
    root = ICONS / theme
    found: dict[str, dict[str, tuple[int, Path]]] = {c: {} for c in CLASSES}
    if theme == "oxygen":  # oxygen/base/<size>/<class>/<name>.png
        layout = [(s.name, s / c, c) for s in (root / "base").iterdir() for c in CLASSES]
    elif theme == "breeze":  # breeze/<class>/<size>/<name>.svg
        layout = [(s.name, s, c) for c in CLASSES if (root / c).is_dir() for s in (root / c).iterdir()]
    else:  # Papirus/<size>/<class>/<name>.svg
        layout = [(s.name, s / c, c) for s in root.iterdir() if s.is_dir() for c in CLASSES]
    for size_name, folder, label in layout:
        size = _size_of(size_name)
        if size < 16 or size > SIZE or not folder.is_dir():
            continue
        for file in folder.iterdir():
            if file.suffix not in (".png", ".svg") or not file.exists():
                continue
            best = found[label].get(file.stem)
            if best is None or size > best[0]:
                found[label][file.stem] = (size, file)
    out: dict[str, dict[str, Path]] = {}
    for label, names in found.items():
        seen: set[Path] = set()
        out[label] = {}
        for name in sorted(names):  # aliases (symlinks) of one drawing: keep the first name
            real = names[name][1].resolve()
            if real not in seen:
                seen.add(real)
                out[label][name] = names[name][1]
    return out


def _write_icon(source: Path, target: Path) -> bool:
    """Render (SVG) or resize (PNG) one icon to a SIZE x SIZE RGBA PNG; False if unreadable."""
    from PIL import Image

    try:
        if source.suffix == ".svg":
            data = subprocess.run(["rsvg-convert", "-w", str(SIZE), "-h", str(SIZE), "-f", "png", str(source)],
                                  check=True, capture_output=True, timeout=30).stdout
            image = Image.open(io.BytesIO(data))
        else:
            image = Image.open(source)
        image = image.convert("RGBA")
        if image.size != (SIZE, SIZE):
            image = image.resize((SIZE, SIZE), Image.Resampling.LANCZOS)
        target.parent.mkdir(parents=True, exist_ok=True)
        image.save(target)
        return True
    except (subprocess.SubprocessError, OSError, ValueError):
        return False


def icons(per_class: int = PER_CLASS, seed: int = 0) -> dict[str, Path]:
    """Build (once) and return ``{"train", "val", "test"}`` -> CSV of ``path,label``."""
    root = cache_dir() / "icons"
    paths = {split: root / f"icons-{split}.csv" for split in ("train", "val", "test")}
    if all(p.is_file() for p in paths.values()):
        return paths
    missing = [t for t in (*TRAIN_THEMES, TEST_THEME) if not (ICONS / t).is_dir()]
    if missing:
        raise SystemExit(f"icon themes {missing} are not installed under {ICONS}; on Debian/Ubuntu run: "
                         "apt-get install -y oxygen-icon-theme papirus-icon-theme breeze-icon-theme librsvg2-bin")
    if shutil.which("rsvg-convert") is None:
        raise SystemExit("rsvg-convert is missing: apt-get install -y librsvg2-bin")
    rng = random.Random(seed)
    jobs: list[tuple[str, str, str, Path, Path]] = []  # theme, label, name, source, target
    for theme in (*TRAIN_THEMES, TEST_THEME):
        for label, names in _theme_files(theme).items():
            chosen = sorted(names)
            rng.shuffle(chosen)
            for name in sorted(chosen[:per_class]):
                jobs.append((theme, label, name, names[name], root / theme / label / f"{name}.png"))
    with ThreadPoolExecutor(max_workers=2) as pool:
        ok = list(pool.map(lambda j: j[4].is_file() or _write_icon(j[3], j[4]), jobs))
    rows: dict[str, list[tuple[str, str]]] = {"train": [], "val": [], "test": []}
    for (theme, label, name, _, target), good in zip(jobs, ok):
        if not good:
            continue
        rel = target.relative_to(root).as_posix()
        if theme == TEST_THEME:
            rows["test"].append((rel, label))
        else:  # split by icon name, so one drawing never sits on both sides
            in_val = random.Random(f"{seed}:{name}").random() < VAL_FRACTION
            rows["val" if in_val else "train"].append((rel, label))
    for split, path in paths.items():
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["path", "label"])
        writer.writerows(rows[split])
        atomic_write_text(path, buffer.getvalue())
    return paths


def digits(seed: int = 0) -> dict[str, Path]:
    """scikit-learn's handwritten digits as ``digits/{train,test}/<digit>/<i>.png`` (8x8, mode L)."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    root = cache_dir() / "digits"
    folders = {split: root / split for split in ("train", "test")}
    done = root / ".complete"
    if done.is_file():
        return folders
    data = load_digits()
    order = np.random.default_rng(seed).permutation(len(data.images))
    cut = int(0.8 * len(order))
    for rank, index in enumerate(order):
        split = "train" if rank < cut else "test"
        pixels = (data.images[index] * (255.0 / 16.0)).round().astype("uint8")  # 0..16 -> 0..255
        target = folders[split] / str(int(data.target[index])) / f"{int(index):04d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels, mode="L").save(target)
    atomic_write_text(done, "ok\n")
    return folders


def read_csv(path: Path) -> list[tuple[Path, str]]:
    """``(absolute image path, label)`` rows of a split CSV."""
    with open(path, newline="", encoding="utf-8") as handle:
        return [(path.parent / row["path"], row["label"]) for row in csv.DictReader(handle)]


def main(argv: list[str]) -> None:
    for name in argv or ["icons", "digits"]:
        if name == "icons":
            for split, path in icons().items():
                print(split, path, len(read_csv(path)))
        elif name == "digits":
            for split, path in digits().items():
                print(split, path)
        else:
            raise SystemExit(f"unknown data set {name!r}; known: icons, digits")


if __name__ == "__main__":
    main(sys.argv[1:])
