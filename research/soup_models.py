"""A uniform "model soup" (Wortsman et al., 2022): the element-wise mean of the weights of several batchemo models
fine-tuned from the same starting weights. The soup costs what one model costs at inference, unlike an ensemble.

    python research/soup_models.py OUT.keras A.keras B.keras [...]

The first model gives the architecture (and its input size) and the card, written beside OUT (.json, .md) with
the ingredients recorded; batch-norm moving statistics are averaged like every other weight, which is not what the
mean network would measure (`research/swa_finetune.py` measures them again with
`research/averaging.py`'s `refresh_batchnorm`; the soups in the model card were scored without that).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from batchemo.pipeline.model import read_card  # noqa: E402
from averaging import mean_weights  # noqa: E402
from batchemo.training.card import write_card  # noqa: E402


def soup(out: Path, ingredients: list[Path]) -> None:
    import keras

    models = [keras.saving.load_model(p, compile=False) for p in ingredients]
    weights = [m.get_weights() for m in models]
    try:
        models[0].set_weights(mean_weights(weights))
    except ValueError as e:
        raise SystemExit(f"error: {e}") from e
    out.parent.mkdir(parents=True, exist_ok=True)
    models[0].save(out)
    card = read_card(ingredients[0])
    card["model_file"] = out.name
    card["soup_of"] = [str(p) for p in ingredients]
    write_card(out, card)  # NAME.json and NAME.md, as `batchemo train` writes them
    print(f"{out}: mean of {len(models)} models")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    soup(Path(sys.argv[1]), [Path(a) for a in sys.argv[2:]])
