# Type stubs of collapse._core. Each area keeps its own delimited block.

from typing import Dict, Union

import numpy as np
import numpy.typing as npt

# --- metrics (cpp/bindings/register_metrics.cpp) ------------------------------------------
def ngram_diversity(
    tokens: npt.NDArray[np.uint32], offsets: npt.NDArray[np.int64], max_n: int = 4, repeat_n: int = 4
) -> Dict[str, Union[npt.NDArray[np.uint64], int]]:
    """{'distinct': uint64[max_n], 'total': uint64[max_n], 'repeated': int, 'repeat_total': int}."""
    ...
# --- end metrics ---------------------------------------------------------------------------
