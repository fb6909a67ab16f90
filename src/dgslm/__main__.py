import sys

from dgslm.cli.main import main

sys.exit(main())
