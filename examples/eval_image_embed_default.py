"""Measure the shipped ``image-embed`` default, ``icon-context-features``, on a held-out theme.

``icon-context-features`` is the ``icon-context-resnet`` classifier's folder (trained by
``examples/train_image_classify_default.py`` on the Oxygen and Papirus icon themes) read by
the image-embed pipeline: its 256-d pooled features. Nothing here trains; this script
measures retrieval with it on **Breeze, the theme held out of that training**, against the
same retrieval on raw pixels:

* *context accuracy*: each Breeze icon's nearest neighbour (cosine) among the Oxygen +
  Papirus icons, and whether it is filed in the same context folder (actions, apps, ...);
* *same-name recall@10*: for each Breeze icon whose freedesktop name (``document-save``)
  also appears in Oxygen or Papirus, whether an icon of that name is among its 10 nearest
  neighbours there: finding the same concept drawn by another designer.

The baseline embeds each icon as its standardised 32x32 RGB pixels (transparency over
white, as the pipeline sees it). ``--update-registry`` writes the figures into
registry.yaml; ``tests/vision/test_embed_default.py`` recomputes them. About a minute::

    python -m examples.eval_image_embed_default --update-registry
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

NAME = "icon-context-features"


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def retrieval(queries: np.ndarray, gallery: np.ndarray, query_rows: list[tuple[Path, str]],
              gallery_rows: list[tuple[Path, str]], k: int = 10) -> dict[str, float]:
    """Context accuracy of the nearest neighbour and same-name recall@k (cosine similarity)."""
    similarity = _unit(queries) @ _unit(gallery).T
    order = np.argsort(-similarity, axis=1, kind="stable")
    gallery_labels = np.array([label for _, label in gallery_rows])
    gallery_names = np.array([path.stem for path, _ in gallery_rows])
    nearest = gallery_labels[order[:, 0]]
    context = float(np.mean(nearest == np.array([label for _, label in query_rows])))
    names = set(gallery_names)
    shared = [i for i, (path, _) in enumerate(query_rows) if path.stem in names]
    hits = [query_rows[i][0].stem in set(gallery_names[order[i, :k]]) for i in shared]
    return {"context_accuracy": context, f"same_name_recall@{k}": float(np.mean(hits)),
            "same_name_queries": len(shared)}


def measure() -> dict[str, float]:
    """The figures registry.yaml holds: the shipped embedder and the pixel baseline, same split."""
    import hub
    from examples import data_prep_vision
    from examples.train_image_classify_default import pixel_features

    splits = data_prep_vision.icons()
    gallery_rows = data_prep_vision.read_csv(splits["train"]) + data_prep_vision.read_csv(splits["val"])
    query_rows = data_prep_vision.read_csv(splits["test"])
    pipe = hub.load("image-embed", model=NAME, device="cpu")
    embed = lambda rows: np.asarray(pipe([str(p) for p, _ in rows], batch_size=64), dtype=np.float64)
    model = retrieval(embed(query_rows), embed(gallery_rows), query_rows, gallery_rows)
    pixels_gallery = pixel_features([p for p, _ in gallery_rows]).astype(np.float64)
    pixels_query = pixel_features([p for p, _ in query_rows]).astype(np.float64)
    mean, std = pixels_gallery.mean(0), pixels_gallery.std(0) + 1e-6  # standardised on the gallery
    baseline = retrieval((pixels_query - mean) / std, (pixels_gallery - mean) / std, query_rows, gallery_rows)
    return {"queries": len(query_rows), "gallery": len(gallery_rows), "dim": int(len(pipe(str(query_rows[0][0])))),
            **{k: round(v, 4) if isinstance(v, float) else v for k, v in model.items()},
            **{f"baseline_{k}": round(v, 4) for k, v in baseline.items() if k != "same_name_queries"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--update-registry", action="store_true")
    args = parser.parse_args()
    figures = measure()
    print(json.dumps(figures, indent=2))
    if args.update_registry:
        from examples.registry_update import update_registry

        update_registry(NAME, {key: figures[key] for key in (
            "context_accuracy", "same_name_recall@10", "baseline_context_accuracy", "baseline_same_name_recall@10",
            "same_name_queries")})


if __name__ == "__main__":
    main()
