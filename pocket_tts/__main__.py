"""``python -m pocket_tts``: the same command line as ``pocket-tts``."""

import sys

from .cli import main

sys.exit(main())
