"""DVC stage: the HTML report of every experiment. Usage: `python pipelines/report.py`.

Wiring only: the page is built by `theorydl.stages.report` from the analysis outputs.
"""

import sys

from theorydl.cli import main

if __name__ == "__main__":
    sys.exit(main(["report", *sys.argv[1:]]))
