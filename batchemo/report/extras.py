"""The extra outputs of a report beside its tables: report.html with its thumbnails, and the saved face crops,
written in one step that every job calls, so their order (thumbnails and crops cut in one pass over the input,
the page last, when its pictures exist) is decided once."""
from __future__ import annotations

from typing import Callable

from .crops import Crops


def write_extras(*, html: bool, save_faces: bool, thumbs: Callable[[], Crops],
                 save: Callable[[list[Crops]], object], page: Callable[[Crops | None], object]) -> None:
    """`thumbs()`: the page's thumbnail request (with `html`); `save(also)`: cut the face crops (with
    `save_faces`), the thumbnails in `also` cut in the same pass, each photo or frame decoded once for both;
    `page(thumbs)`: write report.html (with `html`), cutting the thumbnails itself where no crops were saved."""
    wanted = thumbs() if html else None
    if save_faces:
        save([wanted] if wanted else [])
    if html:
        page(wanted)
