"""Few-shot scoring speed: the naive way (the whole prompt, examples included, through the model for
every test sentence) against encoding the shared prefix once and reusing its key/value cache, one
sentence at a time and in batches of 16. Same model, prompt and sentences; prints sentences per second
for each, the cache's ratio over naive one at a time (target >= 3x), what batching adds, and whether
the ways predict the same labels.

    python benchmarks/prefix_cache.py [--shots 8] [--sentences 40] [--model base-decoder]
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

import numpy as np
import torch

from companion import data, prompting, resources, settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shots", type=int, default=8)
    parser.add_argument("--sentences", type=int, default=40)
    parser.add_argument("--model", default="base-decoder")
    args = parser.parse_args()
    torch.manual_seed(settings.SEED)
    lm = resources.language_model(args.model)
    ds = data.load("movie-sentiment")
    template = prompting.Template()
    prefix = template.prefix(prompting.draw_shots(ds["train"], args.shots, seed=settings.SEED))
    queries = [template.query(t) for t in ds["test"]["text"][:args.sentences]]
    prefix_tokens = len(lm.tokenizer(prefix)["input_ids"])
    timings, scores = {}, {}
    ways = {"naive": prompting.score_naive,
            "prefix cache": functools.partial(prompting.score_cached, batch_size=1),
            "cache, batch 16": functools.partial(prompting.score_cached, batch_size=16)}
    for name, score in ways.items():
        score(lm.model, lm.tokenizer, prefix, queries[:2], template.label_words)  # warm-up
        start = time.perf_counter()
        scores[name] = score(lm.model, lm.tokenizer, prefix, queries, template.label_words)
        timings[name] = len(queries) / (time.perf_counter() - start)
    ratio = timings["prefix cache"] / timings["naive"]
    batched = timings["cache, batch 16"] / timings["prefix cache"]
    same = all(bool((scores["naive"].argmax(-1) == scores[name].argmax(-1)).all()) for name in ways)
    gap = max(float(np.abs(scores["naive"] - scores[name]).max()) for name in ways)
    print(f"\n{lm.resolved.name}, {args.shots}-shot prompt ({prefix_tokens} tokens shared), {len(queries)} sentences,"
          f" {torch.get_num_threads()} threads")
    for name, speed in timings.items():
        print(f"{name:>15}: {speed:6.2f} sentences/s")
    print(f"{'speed-up':>15}: {ratio:.1f}x from the cache (target >= 3x: {'met' if ratio >= 3 else 'NOT met'}),"
          f" then {batched:.1f}x from batches of 16")
    print(f"{'agreement':>15}: same predictions {same}, largest log-probability gap {gap:.1e}")
    out = Path(__file__).parent / "results" / "prefix_cache.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"model": lm.resolved.name, "shots": args.shots, "prefix_tokens": prefix_tokens,
                               "sentences": len(queries), "sentences_per_second": timings, "ratio": ratio,
                               "batched_ratio": batched,
                               "same_predictions": same, "max_gap": gap, "source": settings.source()}, indent=2))


if __name__ == "__main__":
    main()
