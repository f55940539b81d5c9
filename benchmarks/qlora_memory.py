"""What QLoRA's 4-bit base saves, and what it costs. For an encoder classifier of BERT-base's shape
(12 blocks of width 768, the gpu profile's encoder) or MiniLM's (6 blocks of width 384, the offline
encoder), it trains rank-8 LoRA adapters on the query and value projections twice, through the
chapter's own ``peft_tuning.prepare``: on the fp32 base (LoRA) and on the base loaded in 4 bits
(QLoRA: NF4 with double quantization, ``peft_tuning.four_bit``). It prints, for each:

- the model's weights in memory (``get_memory_footprint``);
- the peak memory of training above what was held before (``memory.PeakMemory``: on a GPU the
  memory torch allocated there, on a CPU the process's resident memory);
- seconds per training step (forward, loss, backward, AdamW step), the median of the timed steps
  after 2 warm-up steps.

The weights are random (a config, not a checkpoint: the hub is out of reach here): memory and time do
not depend on their values, accuracy does, which is why accuracy is measured in the chapter instead.

    python benchmarks/qlora_memory.py [--shape bert-base|minilm] [--steps N] [--batch B] [--length L]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from transformers import BertConfig, BertForSequenceClassification

from companion import peft_tuning
from companion.memory import PeakMemory
from companion.peft_tuning import Strategy

SHAPES = {"bert-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
          "minilm": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)}


def measure(model: torch.nn.Module, strategy: Strategy, steps: int, batch: int, length: int) -> dict[str, float]:
    """Weights in memory (MB), peak training memory (MB) and median seconds per step of ``strategy``."""
    weights = model.get_memory_footprint() / 1e6
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if not getattr(model, "is_loaded_in_4bit", False):
        model = model.to(device)  # a 4-bit model was placed on its device when it was loaded
    prepared = peft_tuning.prepare(model, strategy).train()
    optimizer = torch.optim.AdamW([p for p in prepared.parameters() if p.requires_grad], lr=strategy.lr)
    generator = torch.Generator().manual_seed(0)
    inputs = {"input_ids": torch.randint(1000, 20000, (batch, length), generator=generator).to(device),
              "attention_mask": torch.ones(batch, length, dtype=torch.long, device=device),
              "labels": torch.randint(0, 2, (batch,), generator=generator).to(device)}
    seconds = []
    with PeakMemory() as peak:
        for step in range(steps + 2):
            start = time.perf_counter()
            prepared(**inputs).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if device == "cuda":
                torch.cuda.synchronize()
            if step >= 2:
                seconds.append(time.perf_counter() - start)
    return {"weights MB": weights, "peak training MB": peak.peak / 1e6, "s per step": statistics.median(seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=SHAPES, default="bert-base")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)
    config = BertConfig(num_labels=2, **SHAPES[args.shape])
    where = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    print(f"{args.shape} shape, random weights; batch {args.batch} x {args.length} tokens; {where}")
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        BertForSequenceClassification(config).save_pretrained(folder)
        rows["LoRA r=8 (fp32 base)"] = measure(BertForSequenceClassification.from_pretrained(folder),
                                               Strategy("LoRA r=8", "lora", 2e-3, rank=8), args.steps, args.batch, args.length)
        quantized = BertForSequenceClassification.from_pretrained(folder, quantization_config=peft_tuning.four_bit())
        rows["QLoRA r=8 (NF4 base)"] = measure(quantized, Strategy("QLoRA r=8", "qlora", 2e-3, rank=8),
                                               args.steps, args.batch, args.length)
    for name, row in rows.items():
        print(f"{name:22s} " + "  ".join(f"{key} {value:8.3f}" for key, value in row.items()))
    lora, qlora = rows.values()
    print(f"QLoRA / LoRA: weights {qlora['weights MB'] / lora['weights MB']:.2f}x, peak training memory"
          f" {qlora['peak training MB'] / lora['peak training MB']:.2f}x, time per step"
          f" {qlora['s per step'] / lora['s per step']:.2f}x")


if __name__ == "__main__":
    main()
