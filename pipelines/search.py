"""DVC stage: the search step of one experiment (Optuna learning-rate search for `width`).
Usage: `python pipelines/search.py EXPERIMENT`.

Wiring only: params are validated and the work is done by `theorydl.stages.search`.
"""

import sys

from theorydl.cli import main

if __name__ == "__main__":
    sys.exit(main(["search", *sys.argv[1:]]))
