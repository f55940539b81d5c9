"""How close to the machine do the book's training steps run? For (a) a fine-tuning step of the encoder
classifier (offline: all-MiniLM-L6-v2 with a new two-label head, on movie-sentiment batches) and (b) a
pretraining step of the GPT chapter's small GPT-2 (random weights, on Brown corpus blocks), both sized
by the active profile, it times real AdamW training steps and prints the achieved floating-point rate
against this machine's fp32 matmul peak, measured in the same run, as a ratio; then says where the
rest of the time goes.

Peak: the fastest of a few fp32 ``torch.matmul`` products of two 2048 x 2048 matrices (2 n^3 FLOPs
each), after a warm-up, on all torch threads. Model FLOPs of one training step (forward + backward),
the standard estimate counting real (unpadded) tokens:

    6 x N x T  +  6 x N_row x B  +  12 x n_layer x d_model x (sum over rows of len^2)

T is the batch's real tokens, B its rows, len a row's real length. N counts the parameters multiplied
with every token: the transformer blocks and, for the GPT, the output projection tied to the token
embedding (vocabulary x width per token); embedding lookups are not matmuls and are left out. N_row
counts those applied once per row (the encoder's pooler and classifier). The last term is attention's
scores and weighted values, 12 x n_layer x len x d_model per token (the GPT's rows are full blocks of
``small.context`` tokens; causal masking is not discounted).

A timed step is forward, loss, backward, optimizer step (``torch.optim.AdamW``), zero_grad, after 2
warm-up steps; its forward+backward and its optimizer step are timed apart. One more forward+backward
runs under ``torch.profiler`` to split its time into matmul kernels, other kernels and the time between
kernels. Peak memory stays under 2 GB: the GPT step's logits over its 8,192-token vocabulary (GPT-2's
tokenizer retrained on Brown, as in the chapter), their log-softmax and their gradients take 0.13 GB each.

    python benchmarks/flops.py [--steps N]      (COMPANION_SOURCE=offline for the offline models)
"""

from __future__ import annotations

import argparse
import resource
import time
from dataclasses import dataclass
from typing import Callable

import datasets
import torch
from torch.profiler import ProfilerActivity, profile
from transformers import DataCollatorWithPadding, PreTrainedModel, default_data_collator

from companion import data, gpt, resources, settings

Batch = dict[str, torch.Tensor]

WARMUP = 2
PEAK_SIZE = 2048
PEAK_REPEATS = 5
MATMULS = frozenset({"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"})
LOSS = frozenset({"aten::_log_softmax", "aten::_log_softmax_backward_data", "aten::nll_loss_forward",
                  "aten::nll_loss_backward"})
# Operator calls that move no data (views, allocations): their time counts as time between kernels.
NO_DATA = frozenset({
    "aten::view", "aten::reshape", "aten::_reshape_alias", "aten::_unsafe_view", "aten::t", "aten::transpose",
    "aten::permute", "aten::expand", "aten::as_strided", "aten::slice", "aten::select", "aten::narrow",
    "aten::split", "aten::unsqueeze", "aten::squeeze", "aten::alias", "aten::detach", "aten::detach_",
    "aten::empty", "aten::empty_strided", "aten::empty_like", "aten::resolve_conj", "aten::resolve_neg",
    "aten::lift_fresh", "aten::to", "aten::contiguous"})
ADAMW_BYTES = 28  # per fp32 parameter, at least: read it, its gradient and two moments; write it and the moments


@dataclass(frozen=True)
class Workload:
    """One of the book's training steps: the model, its batches (warm-up, timed, then one profiled), the
    learning rate, and the parameters the FLOP estimate multiplies per token and per row."""

    title: str
    model: PreTrainedModel
    batches: list[Batch]
    lr: float
    per_token: int
    per_row: int


@dataclass(frozen=True)
class Timing:
    """Mean seconds of a timed training step and of its two parts."""

    forward_backward: float
    optimizer: float

    @property
    def step(self) -> float:
        """Seconds per whole step."""
        return self.forward_backward + self.optimizer


@dataclass(frozen=True)
class Split:
    """One profiled forward+backward: its wall seconds, the seconds spent in matmul kernels, in other
    kernels, and in the loss's among those (log-softmax and NLL), and the operator calls it made."""

    wall: float
    matmul: float
    other: float
    loss: float
    calls: int

    @property
    def between(self) -> float:
        """Seconds outside any kernel: Python, the autograd engine, dispatch, views, memory allocation."""
        return max(0.0, self.wall - self.matmul - self.other)


@dataclass(frozen=True)
class Result:
    """What one workload measured: per-step means over the timed steps, and the profiled step."""

    w: Workload
    timing: Timing
    split: Split
    tokens: float  # real tokens a step
    positions: float  # token positions computed a step, padding included
    flops: float  # model FLOPs a step
    matmul_rate: float  # GFLOP/s of the profiled step's matmul kernels, padding's FLOPs included
    rows: int  # token rows (batch x length) of the profiled step

    @property
    def achieved(self) -> float:
        """Model GFLOP/s of a whole training step."""
        return self.flops / self.timing.step / 1e9

    @property
    def params(self) -> int:
        """The model's parameters, a tied weight counted once."""
        return sum(p.numel() for p in self.w.model.parameters())


def matmul_peak() -> float:
    """GFLOP/s of the fastest of PEAK_REPEATS fp32 products of two PEAK_SIZE-square matrices, after one warm-up."""
    a, b = torch.randn(PEAK_SIZE, PEAK_SIZE), torch.randn(PEAK_SIZE, PEAK_SIZE)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(PEAK_REPEATS):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * PEAK_SIZE ** 3 / best / 1e9


def lengths(batch: Batch, padded: bool = False) -> list[int]:
    """Each row's real length (its attention mask), or with ``padded`` the length every row is computed at."""
    rows, width = batch["input_ids"].shape
    if padded or "attention_mask" not in batch:
        return [width] * rows
    return batch["attention_mask"].sum(1).tolist()


def step_flops(w: Workload, rows: list[int]) -> float:
    """Model FLOPs of one forward+backward over rows of these lengths (the module docstring's formula)."""
    config = w.model.config
    attention = 12 * config.num_hidden_layers * config.hidden_size * sum(n * n for n in rows)
    return 6 * w.per_token * sum(rows) + 6 * w.per_row * len(rows) + attention


def encoder_workload(count: int, profile: settings.Profile) -> Workload:
    """The encoder classifier and ``count`` training batches of movie-sentiment sentences, tokenized and
    truncated at ``max_length``, each padded to its longest row by DataCollatorWithPadding, as the book does."""
    clf = resources.classifier("encoder", data.SENTIMENT_LABELS)
    train = data.load("movie-sentiment", data.profile_caps(profile.finetune))["train"].shuffle(seed=settings.SEED)
    train = train.select(range(count * profile.batch_size))
    encoded = clf.tokenizer(list(train["text"]), truncation=True, max_length=profile.max_length)
    rows = [{**{key: values[i] for key, values in encoded.items()}, "labels": label}
            for i, label in enumerate(train["label"])]
    collate = DataCollatorWithPadding(clf.tokenizer)
    batches = [collate(rows[i:i + profile.batch_size]) for i in range(0, len(rows), profile.batch_size)]
    params = dict(clf.model.named_parameters())
    per_token = sum(p.numel() for name, p in params.items() if name.startswith("bert.encoder."))
    # Embeddings (lookups, left out) and blocks aside, what remains (pooler, classifier) reads one token a row.
    per_row = sum(p.numel() for name, p in params.items() if not name.startswith(("bert.embeddings.", "bert.encoder.")))
    return Workload(f"encoder fine-tuning step: {clf.resolved.name} + {len(data.SENTIMENT_LABELS)}-label head",
                    clf.model, batches, 5e-5, per_token, per_row)


def gpt_workload(count: int, profile: settings.Profile) -> Workload:
    """The GPT chapter's small GPT-2 and ``count`` batches of Brown corpus blocks of ``small.context`` tokens."""
    tok = gpt.brown_tokenizer()
    brown = data.load("brown", data.profile_caps(profile.finetune))
    blocks = gpt.lm_blocks(datasets.DatasetDict(train=brown["train"]), tok, profile.small.context)["train"]
    blocks = blocks.select(range(count * profile.batch_size))
    batches = [default_data_collator([blocks[j] for j in range(i, i + profile.batch_size)])
               for i in range(0, len(blocks), profile.batch_size)]
    model = gpt.small_gpt2(tok, profile)
    # The token embedding (tied to the output projection, so listed once) stays in: it is a matmul per token.
    per_token = sum(p.numel() for name, p in model.named_parameters() if ".wpe." not in name)
    config = model.config
    return Workload(f"GPT-2 pretraining step: {config.n_layer} layers x {config.n_embd}, context {config.n_positions},"
                    f" vocabulary {config.vocab_size:,}", model, batches, 5e-4, per_token, 0)


def time_steps(w: Workload, steps: int) -> Timing:
    """Run WARMUP + ``steps`` AdamW training steps; return the mean times of the last ``steps``."""
    optimizer = torch.optim.AdamW(w.model.parameters(), lr=w.lr)
    w.model.train()
    forward_backward = optimizing = 0.0
    for i, batch in enumerate(w.batches[:WARMUP + steps]):
        start = time.perf_counter()
        w.model(**batch).loss.backward()
        middle = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad()
        end = time.perf_counter()
        if i >= WARMUP:
            forward_backward += middle - start
            optimizing += end - middle
    return Timing(forward_backward / steps, optimizing / steps)


def profile_step(w: Workload) -> Split:
    """One forward+backward on the last batch under torch.profiler, split by the operators' own times."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        w.model(**w.batches[-1]).loss.backward()
        wall = time.perf_counter() - start
    events = [e for e in prof.key_averages() if e.key.startswith("aten::")]

    def seconds(keys: Callable[[str], bool]) -> float:
        return sum(e.self_cpu_time_total for e in events if keys(e.key)) / 1e6

    return Split(wall, seconds(MATMULS.__contains__), seconds(lambda key: key not in MATMULS | NO_DATA),
                 seconds(LOSS.__contains__), sum(e.count for e in events))


def measure(w: Workload, steps: int) -> Result:
    """Time ``steps`` training steps of ``w`` and profile one forward+backward."""
    timing, split = time_steps(w, steps), profile_step(w)
    timed = w.batches[WARMUP:WARMUP + steps]
    real = [lengths(b) for b in timed]
    last = w.batches[-1]
    return Result(w, timing, split, sum(map(sum, real)) / steps,
                  sum(sum(lengths(b, padded=True)) for b in timed) / steps,
                  sum(step_flops(w, rows) for rows in real) / steps,
                  step_flops(w, lengths(last, padded=True)) / split.matmul / 1e9, last["input_ids"].numel())


def report(label: str, r: Result, peak: float) -> None:
    """Print one workload's figures."""
    t, s = r.timing, r.split
    print(f"\n({label}) {r.w.title}, lr {r.w.lr:g}")
    print(f"  parameters      {r.params / 1e6:.2f}M; in 6N: {r.w.per_token / 1e6:.2f}M per token"
          + (f", {r.w.per_row / 1e6:.2f}M per row" if r.w.per_row else ""))
    print(f"  batch           {len(r.w.batches[0]['input_ids'])} rows, {r.tokens:,.0f} real tokens a step"
          + (f" (padded to {r.positions:,.0f})" if r.positions > r.tokens else ""))
    print(f"  model FLOPs     {r.flops / 1e9:.2f} GFLOP a step")
    print(f"  step            {t.step:.3f} s = forward+backward {t.forward_backward:.3f} s"
          f" ({t.forward_backward / t.step:.0%}) + optimizer step {t.optimizer:.3f} s ({t.optimizer / t.step:.0%})")
    print(f"  throughput      {r.tokens / t.step:,.0f} tokens/s, {r.achieved:.2f} GFLOP/s = {r.achieved / peak:.3f}"
          f" of peak")
    print(f"  profiled f+b    {s.wall:.3f} s: matmul kernels {s.matmul / s.wall:.0%} ({r.matmul_rate:.1f} GFLOP/s"
          f" = {r.matmul_rate / peak:.2f} of peak), other kernels {s.other / s.wall:.0%} (loss {s.loss / s.wall:.0%}),"
          f" between kernels {s.between / s.wall:.0%} ({s.calls:,} operator calls)")
    print(f"  peak memory     {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB so far")


def explain(r: Result, peak: float) -> str:
    """The closing paragraph's sentences about one workload, from its measured figures."""
    t, s = r.timing, r.split
    padding = r.positions / r.tokens - 1
    return (f"The {r.w.title.split(':')[0]} runs at {r.achieved / peak:.1%} of the peak."
            f" {t.optimizer / t.step:.0%} of its step goes to AdamW, which multiplies no matrices: it makes"
            f" separate elementwise passes over all {r.params / 1e6:.1f}M parameters, their gradients and two"
            f" moment buffers (at least {ADAMW_BYTES * r.params / 1e9:.2f} GB of memory traffic), so it is"
            f" memory-bound. Of the forward+backward, {s.matmul / s.wall:.0%} is matmul kernels, and even these"
            f" reach only {r.matmul_rate / peak:.0%} of the peak: {r.rows:,} token rows by a width of"
            f" {r.w.model.config.hidden_size} are small shapes next to the {PEAK_SIZE} x {PEAK_SIZE} product"
            + (f", and padding makes the rows {padding:.0%} longer than their real tokens: work that counts for"
               f" nothing" if padding > 0 else "")
            + f". {s.other / s.wall:.0%} is other kernels ({s.loss / s.wall:.0%} the loss's log-softmax and NLL):"
            f" softmax, layer norm, GELU, dropout, the embedding gather and padding-mask ops do few FLOPs per byte"
            f" and wait on memory. The last {s.between / s.wall:.0%} lies between kernels: Python, the autograd"
            f" engine, memory allocation and per-operation framework overhead, about"
            f" {s.between / s.calls * 1e6:.0f} us for each of {s.calls:,} operator calls.")


def run(label: str, w: Workload, steps: int, peak: float) -> str:
    """Measure ``w`` and print its figures; return its sentences for the closing paragraph (the model is
    freed on return, before the next workload loads)."""
    result = measure(w, steps)
    report(label, result, peak)
    return explain(result, peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(settings.SEED)
    datasets.disable_progress_bars()
    profile = settings.profile()
    peak = matmul_peak()
    print(f"peak: fp32 torch.matmul {PEAK_SIZE} x {PEAK_SIZE}, {torch.get_num_threads()} threads, fastest of"
          f" {PEAK_REPEATS}: {peak:.1f} GFLOP/s")
    count = WARMUP + args.steps + 1
    paragraphs = [run(label, build(count, profile), args.steps, peak)
                  for label, build in (("a", encoder_workload), ("b", gpt_workload))]
    print(f"\nModel FLOPs a step = 6 x N x real tokens + 6 x N_row x rows + 12 x n_layer x d_model x"
          f" sum(row length^2); achieved = model FLOPs / step time. Means of {args.steps} steps after {WARMUP}"
          f" warm-up steps; profile {profile.name}, source {settings.source()}, {torch.get_num_threads()} threads.")
    print("\nWhere the gap goes. " + " ".join(paragraphs))


if __name__ == "__main__":
    main()
