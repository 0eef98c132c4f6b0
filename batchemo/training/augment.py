"""Training-time augmentation of grey face crops: one Keras layer of backend-neutral ops.

It is a layer of the training step, not of the data pipeline, so on a GPU the crops are warped on the device
inside the compiled step (the host only slices uint8 batches) and every backend augments the same way.
One fused warp (flip, rotation, zoom and shift in a single bilinear resampling) instead of a stack of Keras's
preprocessing layers: one resampling blurs less than four, and under XLA the stack's separate affine warps
took minutes to compile, where the whole training step with this layer (MobileNet included) compiles in about
a minute on an H100 machine.
"""
from __future__ import annotations

import math

import keras
from keras import ops


def _reflect(v, n: int):
    """Coordinates outside [0, n-1] mirrored back inside (one reflection covers the small warps used here)."""
    last = float(n - 1)
    v = last - ops.abs(last - ops.abs(v))
    return ops.clip(v, 0.0, last)


class FaceAugment(keras.layers.Layer):
    """Random mirror, rotation (fraction of a full turn), zoom, shift (fraction of the side), contrast and,
    with probability `erase`, one erased rectangle (random erasing: 2-25 % of the crop, filled with a random
    grey), per image. Identity outside training. Input [B, H, W, C] float values 0..255."""

    def __init__(self, rotation: float = 0.04, zoom: float = 0.12, shift: float = 0.08, contrast: float = 0.25,
                 erase: float = 0.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rotation, self.zoom, self.shift, self.contrast, self.erase = rotation, zoom, shift, contrast, erase
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=False):
        if not training:
            return images
        x = ops.cast(images, "float32")
        b = ops.shape(x)[0]
        h, w, c = x.shape[1], x.shape[2], x.shape[3]
        u = keras.random.uniform((b, 11), seed=self.generator)

        def spread(col, amount):  # uniform in [-amount, amount] per image, shaped to broadcast over pixels
            return ops.reshape((2.0 * u[:, col] - 1.0) * amount, (-1, 1, 1))

        angle = spread(0, self.rotation * 2 * math.pi)
        scale = 1.0 + spread(1, self.zoom)
        tx, ty = spread(2, self.shift * w), spread(3, self.shift * h)
        mirror = ops.reshape(ops.where(u[:, 4] < 0.5, -1.0, 1.0), (-1, 1, 1))

        # Inverse map: for each output pixel, where it comes from in the input (centred coordinates).
        cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
        gy = ops.reshape(ops.arange(h, dtype="float32") - cy, (1, h, 1))
        gx = ops.reshape(ops.arange(w, dtype="float32") - cx, (1, 1, w))
        oy, ox = gy - ty, gx - tx
        cos, sin = ops.cos(angle), ops.sin(angle)
        sx = _reflect(mirror * (cos * ox + sin * oy) / scale + cx, w)
        sy = _reflect((cos * oy - sin * ox) / scale + cy, h)

        x0, y0 = ops.floor(sx), ops.floor(sy)
        wx, wy = ops.expand_dims(sx - x0, -1), ops.expand_dims(sy - y0, -1)
        x1, y1 = ops.minimum(x0 + 1, w - 1), ops.minimum(y0 + 1, h - 1)
        flat = ops.reshape(x, (b, h * w, c))

        def at(yy, xx):
            idx = ops.reshape(ops.cast(yy * w + xx, "int32"), (b, h * w, 1))
            return ops.reshape(ops.take_along_axis(flat, ops.repeat(idx, c, axis=-1), axis=1), (b, h, w, c))

        out = ((1 - wy) * ((1 - wx) * at(y0, x0) + wx * at(y0, x1))
               + wy * ((1 - wx) * at(y1, x0) + wx * at(y1, x1)))

        factor = ops.reshape(1.0 + (2.0 * u[:, 5] - 1.0) * self.contrast, (-1, 1, 1, 1))
        mean = ops.mean(out, axis=(1, 2, 3), keepdims=True)
        out = (out - mean) * factor + mean

        if self.erase > 0:
            area = (0.02 + 0.23 * u[:, 6]) * (h * w)
            aspect = ops.exp((2.0 * u[:, 7] - 1.0) * math.log(3.0))
            half_h = ops.reshape(ops.sqrt(area * aspect) / 2, (-1, 1, 1))
            half_w = ops.reshape(ops.sqrt(area / aspect) / 2, (-1, 1, 1))
            ey, ex = ops.reshape(u[:, 8] * h, (-1, 1, 1)), ops.reshape(u[:, 9] * w, (-1, 1, 1))
            on = ops.reshape(u[:, 10] < self.erase, (-1, 1, 1))
            box = on & (ops.abs(gy + cy - ey) < half_h) & (ops.abs(gx + cx - ex) < half_w)
            fill = ops.reshape(keras.random.uniform((b,), 0.0, 255.0, seed=self.generator), (-1, 1, 1, 1))
            out = ops.where(ops.expand_dims(box, -1), fill, out)
        return ops.clip(out, 0.0, 255.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rotation": self.rotation, "zoom": self.zoom, "shift": self.shift,
                "contrast": self.contrast, "erase": self.erase, "seed": self.seed}
