import sys

from ..cli import main

sys.exit(main(["emulator", *sys.argv[1:]]))
