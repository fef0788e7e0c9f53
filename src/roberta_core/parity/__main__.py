"""`python -m roberta_core.parity [CKPT_DIR] [--backends ...] [--device ...] [--dtype ...]`:
`roberta parity` without the `roberta` entry point (what `conformance/gpu.sh` runs)."""

import sys

from . import cli_main

sys.exit(cli_main())
