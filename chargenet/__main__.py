import sys

from chargenet.cli import main

sys.exit(main())
