"""``python -m recsys.cli``: the ``trendrec`` program run from a source tree, as tests and benchmarks do.

    python -m recsys.cli status
"""

import sys

from recsys.cli import main

if __name__ == "__main__":  # importing the module (every module is imported by tests/test_package.py) runs nothing
    sys.exit(main())
