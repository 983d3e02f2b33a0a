"""``python -m backend.simulation``: the same as ``al-simulate``."""
import sys

from backend.simulation.cli import main

sys.exit(main())
