"""DVC stage: the train step of one experiment. Usage: `python pipelines/train.py EXPERIMENT`.

Wiring only: params are validated and the work is done by `theorydl.stages.train`.
"""

import sys

from theorydl.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
