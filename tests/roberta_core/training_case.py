"""One small training problem shared by the training tests of every backend (the cross-backend
loss curves, the distributed runs): a tiny config with dropout off, fixed initial weights, and
masked-LM batches of tokens drawn from a Zipf law, so the loss falls within a few updates and a
wrong update shows."""

from __future__ import annotations

import os

import numpy as np

from roberta_core.data import MaskedLMBatches
from roberta_core.optim import AdamW
from tests.helpers import random_state, tiny_config

SPECIALS = (0, 1, 2, 3)  # <s> <pad> </s> <mask>, as the tiny vocabulary of 100 ids has them
MAX_LEN = 32


def case(steps: int = 20, rows: int = 8, seed: int = 0, start: int = 0, dropout: float = 0.0):
    """(config, initial canonical weights, optimizer settings, batch stream from batch `start`)
    — the same in every process that calls it."""
    config = tiny_config(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    state = random_state(config, "masked_lm", seed=seed, scale=0.05)
    rng = np.random.default_rng(seed)
    zipf = 1.0 / np.arange(1, config.vocab_size - len(SPECIALS) + 1)
    sequences = []
    for _ in range(64):
        body = rng.choice(np.arange(len(SPECIALS), config.vocab_size), size=int(rng.integers(8, MAX_LEN - 1)), p=zipf / zipf.sum())
        sequences.append(np.concatenate([[0], body, [2]]))
    batches = MaskedLMBatches(
        sequences, batch_tokens=rows * MAX_LEN, max_len=MAX_LEN, pad_id=1, mask_token_id=3,
        special_ids=SPECIALS, vocab_size=config.vocab_size, seed=seed,
    )
    return config, state, AdamW(peak_lr=1e-2, warmup=2, steps=steps), batches.stream(start)


def run(trainer, settings: AdamW, stream, accumulate: int = 1, start: int = 0, stop: int | None = None) -> list[float]:
    """The losses of updates `start`..`stop` (default: to the end), this process taking its
    rows of each batch."""
    from roberta_core.data import split_batch
    from roberta_core.optim import loss_items

    losses = []
    for step in range(start, settings.steps if stop is None else stop):
        batch = next(stream)
        mine = split_batch(batch, trainer.process_count)[trainer.process_index]
        losses.append(trainer.train_step(split_batch(mine, accumulate), settings.lr(step), loss_items("masked_lm", batch)))
    return losses


def main(argv: list[str]) -> None:
    """`python -m tests.roberta_core.training_case BACKEND OUT.npz [--tf-devices N] [--report-exit PREFIX]`:
    train the case with BACKEND's trainer as this process finds itself (under torchrun, over
    simulated XLA devices, over N logical TF CPU devices) and let process 0 write the losses, the
    final weights and how many workers and devices took part; `--report-exit` has each process
    write, as it exits, whether it is still in a torch process group."""
    backend, out = argv[0], argv[1]
    if "--report-exit" in argv:  # registered first, so it runs last: what the process holds as it exits
        import atexit

        atexit.register(_report_exit, argv[argv.index("--report-exit") + 1])
    if "--tf-devices" in argv:  # before TensorFlow starts: split the CPU into logical devices
        import tensorflow as tf

        n = int(argv[argv.index("--tf-devices") + 1])
        tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * n)
    from roberta_core.optim import load_backend

    config, state, settings, stream = case(steps=STEPS)
    trainer = load_backend(backend)("masked_lm", config, settings, state=state, precision="fp32")
    losses = run(trainer, settings, stream)
    devices = {"pt": lambda: trainer.process_count, "tf": lambda: trainer.strategy.num_replicas_in_sync,
               "flax": lambda: trainer.mesh.shape["data"]}[backend]()
    if trainer.process_index == 0:
        weights = trainer.weights()
        np.savez(out, losses=np.array(losses), workers=trainer.process_count, devices=devices, **weights)


def _report_exit(prefix: str) -> None:
    """Write whether this process is still in a torch process group once every other exit
    handler has run (`prefix.<rank>`): a group left to the interpreter's teardown aborts at random."""
    import torch.distributed as dist

    rank = os.environ.get("RANK", "0")
    with open(f"{prefix}.{rank}", "w") as f:
        f.write("in a process group" if dist.is_initialized() else "left")


STEPS = 4  # a few updates: enough for the moments and the decay to matter

if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
