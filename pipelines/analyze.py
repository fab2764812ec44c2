"""DVC stage: the analyze step of one experiment. Usage: `python pipelines/analyze.py EXPERIMENT`.

Wiring only: params are validated and the work is done by `theorydl.stages.analyze`.
"""

import sys

from theorydl.cli import main

if __name__ == "__main__":
    sys.exit(main(["analyze", *sys.argv[1:]]))
