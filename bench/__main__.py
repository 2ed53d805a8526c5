import sys

from bench.gateway import main

sys.exit(main())
