"""`python -m data_quality`: the analyzer container's entry point."""

import sys

from .cli import main

sys.exit(main())
