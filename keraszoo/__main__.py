"""`python -m keraszoo` is the `keraszoo` command."""
import sys

from keraszoo.cli import main

sys.exit(main())
