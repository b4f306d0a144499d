"""``python -m stabcheck.worker``: the probe worker the runner starts."""

import sys

from stabcheck.worker.main import main

sys.exit(main())
