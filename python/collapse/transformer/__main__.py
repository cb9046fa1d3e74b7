"""python -m collapse.transformer [33m|1m|HF_FOLDER ...]: print parameter counts."""

from .model import main

raise SystemExit(main())
