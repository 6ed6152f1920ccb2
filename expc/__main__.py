import sys

from expc.cli import main

sys.exit(main())
