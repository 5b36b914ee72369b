import sys

from diffgraph.cli import main

sys.exit(main())
