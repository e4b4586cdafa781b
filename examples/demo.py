"""The main job of a fresh machine: load the shipped sentiment model offline and use it.

    make demo        # or: python -m examples.demo
"""

from __future__ import annotations

import json
import time

import hub

REVIEWS = [
    "These are the best tasting gummy fruits I have ever eaten. Can't stop eating them!",
    "The coffee arrived stale and the bag was torn. Would not buy again.",
    "Decent tea for the price, though the flavour fades quickly.",
    "My dog goes crazy for these treats; five stars, will order again.",
]


def main() -> None:
    start = time.perf_counter()
    classifier = hub.load("text-classify")
    loaded = time.perf_counter()
    results = classifier(REVIEWS)
    done = time.perf_counter()
    print(f"{classifier!r}: loaded in {loaded - start:.2f} s, classified {len(REVIEWS)} reviews "
          f"in {done - loaded:.2f} s")
    for text, result in zip(REVIEWS, results):
        print(json.dumps({"text": text, **result}))


if __name__ == "__main__":
    main()
