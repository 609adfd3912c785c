import sys

from runtime.cli import main

if __name__ == "__main__":  # engine worker processes (spawn) import this module without running it
    sys.exit(main())
