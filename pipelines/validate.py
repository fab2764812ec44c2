"""DVC stage: validate the whole params file. Usage: `python pipelines/validate.py`.

Every other stage depends on its output (theorydl.stages.PARAMS_STAMP), so DVC runs it
first: a malformed params.yaml stops `dvc repro`, naming the key, before any stage
deletes or writes an output.
"""

import sys

from theorydl.cli import main
from theorydl.stages import PARAMS_STAMP

if __name__ == "__main__":
    sys.exit(main(["validate", "--stamp", PARAMS_STAMP]))
