"""``python -m recsys.cli``: the ``trendrec`` program run from a source tree, as tests and benchmarks do.

    python -m recsys.cli status
"""

import sys

from recsys.cli import main

sys.exit(main())
