"""Training across processes with Accelerate: the loop of :mod:`companion.loop`, made distributed.

Run as a module by ``torchrun`` (``python -m companion.distributed``), each process builds the same model
and the same seeded batches; ``Accelerator`` with ``DataLoaderConfiguration(split_batches=True)`` hands each process its share of every
batch, averages the gradients across processes (PyTorch's DistributedDataParallel, over the gloo backend
on a CPU) and steps the schedule once per batch. So N processes with batches of B rows take the same
optimizer steps as one process with batches of B rows: with dropout off, the same losses up to float
rounding. :func:`launch` starts such a run from a notebook and returns what the main process measured.

:data:`CONFIGS` holds the ``accelerate launch --config_file`` files a reader would start from on several
GPUs: DeepSpeed ZeRO stage 2 and FSDP (full sharding).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = Path(__file__).parent / "configs"


def main(argv: list[str] | None = None) -> None:
    """One process of a distributed run: train, then (main process only) score and write the results."""
    options = argparse.ArgumentParser(description=__doc__)
    options.add_argument("--model", required=True, help="encoder folder or hub repository id")
    options.add_argument("--data", type=Path, required=True, help="JSON with train and test text/label lists")
    options.add_argument("--out", type=Path, required=True)
    options.add_argument("--batch-size", type=int, required=True, help="rows per optimizer step, all processes")
    options.add_argument("--lr", type=float, required=True)
    options.add_argument("--epochs", type=int, default=1)
    options.add_argument("--max-length", type=int, default=64)
    options.add_argument("--cpu", action="store_true", help="stay on the CPU (gloo backend)")
    args = options.parse_args(argv)

    import torch
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration
    from datasets import Dataset
    from transformers import AutoConfig, AutoModel, AutoTokenizer, get_linear_schedule_with_warmup, set_seed

    from . import loop, settings
    from .training import FINETUNING

    accelerator = Accelerator(dataloader_config=DataLoaderConfiguration(split_batches=True), cpu=args.cpu)
    if args.cpu:  # share the cores: each process gets its part of them
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // accelerator.num_processes))
    set_seed(settings.SEED)
    rows = json.loads(args.data.read_text())
    train, test = Dataset.from_dict(rows["train"]), Dataset.from_dict(rows["test"])
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    config = AutoConfig.from_pretrained(args.model)
    for name, value in vars(config).items():  # dropout off (BERT's and DistilBERT's names alike), so that
        if "dropout" in name and isinstance(value, float):  # every process computes the same function
            setattr(config, name, 0.0)
    encoder = AutoModel.from_pretrained(args.model, config=config)
    if getattr(encoder, "pooler", None) is not None:  # BERT's pooler: unused by the head, and DistributedDataParallel
        encoder.pooler = None  # refuses weights that get no gradient
    model = loop.SentimentClassifier(encoder, dropout=0.0)
    optimizer = torch.optim.AdamW(loop.parameter_groups(model), lr=args.lr)
    batches = loop.loader(train, tokenizer, batch_size=args.batch_size, max_length=args.max_length, shuffle=True)
    total = len(batches) * args.epochs
    schedule = get_linear_schedule_with_warmup(optimizer, math.ceil(FINETUNING.warmup * total), total)
    model, optimizer, batches, schedule = accelerator.prepare(model, optimizer, batches, schedule)

    losses, start = [], time.perf_counter()
    model.train()
    for _ in range(args.epochs):
        for batch in batches:
            loss = model(**batch)["loss"]
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(model.parameters(), loop.MAX_GRAD_NORM)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            losses.append(float(accelerator.gather(loss.detach()[None]).mean()))  # the mean over all processes
    seconds = time.perf_counter() - start
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        scored = loop.evaluate(accelerator.unwrap_model(model),
                               loop.loader(test, tokenizer, batch_size=64, max_length=args.max_length, shuffle=False))
        args.out.write_text(json.dumps({
            "processes": accelerator.num_processes, "backend": str(accelerator.state.backend),
            "threads_per_process": torch.get_num_threads(), "step_losses": losses, "train_seconds": seconds,
            "rows_per_second": len(train) * args.epochs / seconds, "test_loss": scored["loss"],
            "test_accuracy": scored["accuracy"]}))
    accelerator.end_training()


def zero_memory(parameters: int, devices: int, stage: int) -> dict[str, float]:
    """Bytes per device for the model states of mixed-precision Adam training with ``parameters`` weights
    over ``devices`` data-parallel devices, by ZeRO ``stage`` (Rajbhandari et al. 2020): 2 bytes per
    weight for the 16-bit weights, 2 for their gradients, 12 for the optimizer (32-bit master weights,
    momentum and variance). Stage 0 replicates all three; stage 1 shards the optimizer states over the
    devices, stage 2 the gradients too, stage 3 (FSDP's full sharding) the weights as well. Activations
    and buffers are not counted. Returns the three parts and their total."""
    if parameters < 1 or devices < 1:
        raise ValueError(f"need at least one parameter and one device, got {parameters} and {devices}")
    if stage not in (0, 1, 2, 3):
        raise ValueError(f"ZeRO has stages 0 (none) to 3, got {stage}")
    parts = {"weights": 2.0 * parameters, "gradients": 2.0 * parameters, "optimizer": 12.0 * parameters}
    sharded = ["optimizer", "gradients", "weights"][:stage]
    parts = {name: size / devices if name in sharded else size for name, size in parts.items()}
    return {**parts, "total": sum(parts.values())}


def command(processes: int, arguments: list[str]) -> list[str]:
    """The ``torchrun`` command line that starts ``processes`` copies of this module on this machine
    (rendezvous on 127.0.0.1)."""
    if processes < 1:
        raise ValueError(f"need at least one process, got {processes}")
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(processes),
            "--rdzv-backend", "c10d", "--rdzv-endpoint", "127.0.0.1:0", "-m", "companion.distributed", *arguments]


def launch(processes: int, model: str, train: dict[str, list], test: dict[str, list], *, batch_size: int,
           lr: float, epochs: int = 1, max_length: int = 64, cpu: bool = True, timeout: float = 1_800) -> dict:
    """Train :class:`companion.loop.SentimentClassifier` on ``model`` (a local folder or hub id) with
    ``processes`` processes and ``batch_size`` rows per step in all, on ``train`` (``{"text": [...],
    "label": [...]}``; its rows must fill whole batches), then score ``test``. Returns the main process's
    figures: ``step_losses`` (mean over processes), ``train_seconds``, ``rows_per_second``,
    ``test_loss``, ``test_accuracy``, the backend and threads per process."""
    for name, part in (("train", train), ("test", test)):
        if not part.get("text") or len(part["text"]) != len(part.get("label", [])):
            raise ValueError(f"the {name} rows need text and label lists of one equal, non-zero length")
    if batch_size % processes:
        raise ValueError(f"a batch of {batch_size} rows does not split evenly over {processes} processes")
    if len(train["text"]) % batch_size:
        raise ValueError(f"{len(train['text'])} training rows do not fill batches of {batch_size}")
    with tempfile.TemporaryDirectory() as folder:
        data, out = Path(folder) / "rows.json", Path(folder) / "result.json"
        data.write_text(json.dumps({name: {column: list(values) for column, values in part.items()}
                                     for name, part in (("train", train), ("test", test))}))
        arguments = ["--model", model, "--data", str(data), "--out", str(out), "--batch-size", str(batch_size),
                     "--lr", str(lr), "--epochs", str(epochs), "--max-length", str(max_length), *(["--cpu"] if cpu else [])]
        env = os.environ | {"OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", "TOKENIZERS_PARALLELISM": "false"}
        if sys.platform.startswith("linux"):  # gloo talks over the loopback interface only
            env.setdefault("GLOO_SOCKET_IFNAME", "lo")
        done = subprocess.run(command(processes, arguments), env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0 or not out.is_file():
            raise RuntimeError(f"the {processes}-process run failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        return json.loads(out.read_text())


if __name__ == "__main__":
    main()
