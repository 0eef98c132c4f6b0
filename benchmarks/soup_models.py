"""A uniform "model soup" (Wortsman et al., 2022): the element-wise mean of the weights of several batchemo models
fine-tuned from the same starting weights. The soup costs what one model costs at inference, unlike an ensemble.

    python benchmarks/soup_models.py OUT.keras A.keras B.keras [...]

The first model gives the architecture (and its input size) and the card, which is copied beside OUT with the
ingredients recorded; batch-norm moving statistics are averaged like every other weight.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def soup(out: Path, ingredients: list[Path]) -> None:
    import keras
    import numpy as np

    models = [keras.saving.load_model(p, compile=False) for p in ingredients]
    shapes = [[w.shape for w in m.get_weights()] for m in models]
    if any(s != shapes[0] for s in shapes):
        raise SystemExit("error: the models do not share one architecture")
    mean = [np.mean(ws, axis=0) for ws in zip(*(m.get_weights() for m in models))]
    models[0].set_weights(mean)
    out.parent.mkdir(parents=True, exist_ok=True)
    models[0].save(out)
    card = json.loads(ingredients[0].with_suffix(".json").read_text())
    card["model_file"] = out.name
    card["soup_of"] = [str(p) for p in ingredients]
    out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"{out}: mean of {len(models)} models")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    soup(Path(sys.argv[1]), [Path(a) for a in sys.argv[2:]])
