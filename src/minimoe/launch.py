"""`just moe-train-ep N [flags]`: train with the experts sharded over N local ranks (parallel.py).

The flags are checked here first, in one process, so that a mistake is one `error:` line and exit 2
rather than N copies of it and torchrun's report of failed children. Then this process becomes
`torchrun --standalone --nproc-per-node N -m minimoe.train --threads 1 --expert-parallel N [flags]`:
one rank per process, a free port on this machine, one thread each (flags given win).
"""

from __future__ import annotations

import os
import sys

from .config import ConfigError, build_parser, config_file_in, config_from_args
from .data import DataError, load_dataset
from .train import check_output_paths

USAGE = "just moe-train-ep N [moe-train flags], N the number of ranks, e.g. just moe-train-ep 2"


def torchrun_argv(n: int, flags: list[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(n),
            "-m", "minimoe.train", "--threads", "1", "--expert-parallel", str(n), *flags]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(f"usage: {USAGE}\n\n{__doc__.strip()}\n\nThe moe-train flags: just moe-train --help")
        return 0
    try:
        if not argv or not argv[0].isdigit() or int(argv[0]) < 1:
            raise ConfigError(f"{' '.join(argv[:1]) or 'no N'}: give the number of ranks first: {USAGE}")
        n, flags = int(argv[0]), argv[1:]
        if "-h" in flags or "--help" in flags:
            return os.execv(sys.executable, [sys.executable, "-m", "minimoe.train", *flags])
        full = ["--threads", "1", "--expert-parallel", str(n), *flags]
        cfg = config_from_args(build_parser(defaults=config_file_in(full)).parse_args(full))
        check_output_paths(cfg)
        load_dataset(cfg.train.data, cfg.model.context)
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # each rank runs one thread (--threads); torchrun would warn
    os.execv(sys.executable, torchrun_argv(n, flags))


if __name__ == "__main__":
    sys.exit(main())
