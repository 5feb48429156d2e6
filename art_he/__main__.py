"""``python -m art_he ...`` and ``torchrun --nproc_per_node N -m art_he train ...``."""

import sys

from art_he.cli import main

sys.exit(main())
