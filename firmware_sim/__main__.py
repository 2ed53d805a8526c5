"""`python -m firmware_sim`: the same entry as `chargenet sim`."""

import sys

from firmware_sim.cli import main

sys.exit(main())
