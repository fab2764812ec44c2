import sys

from theorydl.cli import main

sys.exit(main())
