"""DVC stage: the data step of one experiment. Usage: `python pipelines/data.py EXPERIMENT`.

Wiring only: params are validated and the work is done by `theorydl.stages.data`.
"""

import sys

from theorydl.cli import main

if __name__ == "__main__":
    sys.exit(main(["data", *sys.argv[1:]]))
