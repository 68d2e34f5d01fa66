"""`machine` and `collectives`: what this machine is (`harness.run.machine`) and how fast its
processes talk to each other (`harness.collectives`)."""

from __future__ import annotations

import click

from harness.cli.options import json_option
from harness.cli.output import print_json


@click.command("machine")
@json_option
def machine_command(as_json: bool) -> None:
    """Print this machine's fingerprint and its hardware and software keys."""
    from harness.cli.report import print_fingerprint
    from harness.run.machine import collect_fingerprint

    fingerprint = collect_fingerprint()
    if as_json:
        print_json(
            {
                "id": fingerprint.id,
                "hardware_key": fingerprint.hardware_key,
                "software_key": fingerprint.software_key,
                "hardware_label": fingerprint.hardware_label,
                **fingerprint.as_dict(),
            }
        )
    else:
        print_fingerprint(fingerprint)


@click.command("collectives")
@click.option(
    "--nproc-per-node",
    type=click.IntRange(min=2),
    default=2,
    show_default=True,
    help="Ranks, launched by torchrun on this machine (one per GPU with --device cuda).",
)
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default="cpu",
    show_default=True,
    help="cpu: gloo; cuda: NCCL.",
)
@click.option("--sizes", metavar="BYTES,...", help="Message sizes [default: 1 KiB to 16 MiB].")
@click.option("--iters", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--warmup", type=click.IntRange(min=0), default=5, show_default=True)
@json_option
def collectives_command(nproc_per_node, device, sizes, iters, warmup, as_json) -> None:
    """Bus bandwidth of all-reduce, all-gather and broadcast (nccl-tests' algbw and busbw)."""
    import dataclasses

    from harness.cli.report import print_collectives
    from harness.collectives import DEFAULT_SIZES, launch
    from harness.errors import InputError

    try:
        chosen = tuple(int(s) for s in sizes.split(",")) if sizes else DEFAULT_SIZES
    except ValueError as exc:
        raise InputError(f"--sizes: {sizes!r} is not a list of byte counts") from exc
    if any(size < 4 for size in chosen):
        raise InputError("--sizes: each message needs at least 4 bytes (one float32)")
    results = launch(nproc_per_node, device, chosen, iters, warmup)
    if as_json:
        print_json([dataclasses.asdict(result) for result in results])
    else:
        print_collectives(results)
