"""Fine-tuning throughput: dynamic padding (pad each batch to its longest row) against padding every
row to 512 tokens, as many tutorials do. Same model, data, seed and number of steps; prints examples
per second for each, the ratio (target >= 3x), and the test accuracy each run reaches.

    python benchmarks/padding.py [--steps 10] [--batch-size 16] [--test-rows 200]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from datasets import DatasetDict

from companion import data, resources, settings, training


def run(ds: DatasetDict, steps: int, profile: settings.Profile, pad_to: int | None) -> dict[str, float]:
    """Fine-tune a fresh encoder for ``steps`` updates; return its throughput and test accuracy."""
    enc = resources.classifier("encoder", data.SENTIMENT_LABELS)
    result = training.finetune(enc.model, enc.tokenizer, ds, lr=5e-5, profile=profile, pad_to=pad_to,
                               max_steps=steps, evaluate_during=False,
                               name=f"bench-pad-{pad_to or 'dynamic'}")
    return {"examples_per_second": result.examples_per_second, "train_seconds": result.train_seconds,
            "examples": result.train_examples, "test_accuracy": result.evaluate("test")["accuracy"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--test-rows", type=int, default=200)
    args = parser.parse_args()
    profile = dataclasses.replace(settings.profile(), batch_size=args.batch_size, max_length=512)
    ds = data.load("movie-sentiment", data.Caps(args.steps * args.batch_size, args.test_rows))
    dynamic = run(ds, args.steps, profile, pad_to=None)
    padded = run(ds, args.steps, profile, pad_to=512)
    ratio = dynamic["examples_per_second"] / padded["examples_per_second"]
    print(f"\n{args.steps} steps of {args.batch_size} examples, model {resources.resolve('encoder').name},"
          f" test accuracy on {len(ds['test'])} rows")
    for name, r in (("dynamic padding", dynamic), ("pad to 512", padded)):
        print(f"{name:>16}: {r['examples_per_second']:7.1f} examples/s ({r['train_seconds']:.1f} s),"
              f" test accuracy {r['test_accuracy']:.3f}")
    print(f"{'speed-up':>16}: {ratio:.1f}x (target >= 3x: {'met' if ratio >= 3 else 'NOT met'})")
    out = Path(__file__).parent / "results" / "padding.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"steps": args.steps, "batch_size": args.batch_size, "dynamic": dynamic,
                               "pad_to_512": padded, "ratio": ratio, "source": settings.source()}, indent=2))


if __name__ == "__main__":
    main()
