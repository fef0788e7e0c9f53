"""`python -m conformance [CKPT_DIR] [--backends ...] [--device ...] [--dtype ...]`: `roberta parity`."""

import sys

from .parity import cli_main

sys.exit(cli_main())
