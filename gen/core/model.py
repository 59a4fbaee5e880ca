"""The numpy integer model: the one bit-true implementation of docs/numerics.md.

Everything here is integer arithmetic on int64 (or Python int where a product
could pass 62 bits). The RTL, the benches and every report compare against
:func:`forward`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mnist_fpga.files import write_atomic
from mnist_fpga.gen.core.errors import UserError
from mnist_fpga.gen.core.formats import Format, parse_format
from mnist_fpga.gen.core.legal import RQ_MULT_BITS, check_qnet

N_PIXELS = 28 * 28
PIXEL_BITS = 8


@dataclass
class QLayer:
    """One quantized fully connected layer: ``acc = b + W @ x``."""

    w: np.ndarray  # int64 (n_out, n_in), signed w_bits
    b: np.ndarray  # int64 (n_out,), fits in acc_bits
    w_bits: int
    a_bits: int  # width of this layer's (unsigned) input activations
    acc_bits: int
    hidden: bool  # ReLU + requantization follow; else the accumulators are the logits
    # hidden only: y = sat((relu(acc) * rq_mult + 2**(rq_shift-1)) >> rq_shift), a left
    # shift by -rq_shift when rq_shift <= 0 (numerics.md, 5); one int for the layer, or
    # a list with one per neuron (per-neuron weight scales); nothing else (numerics.md, 7)
    rq_mult: int | list[int] = 0
    rq_shift: int | list[int] = 0
    out_bits: int = 0  # hidden only: width of the unsigned output activations
    info: dict = field(default_factory=dict)  # float scales etc., for reports only

    @property
    def n_in(self) -> int:
        return int(self.w.shape[1])

    @property
    def n_out(self) -> int:
        return int(self.w.shape[0])


@dataclass
class QNet:
    """A quantized network: the input mapping plus its layers."""

    name: str
    fmt: Format
    layers: list[QLayer]
    source: str = ""  # where the float weights came from (for provenance headers)

    @property
    def n_classes(self) -> int:
        return self.layers[-1].n_out

    def to_json(self) -> str:
        """Serialise losslessly (integers as Python ints)."""
        doc = {
            "name": self.name,
            "format": self.fmt.name,
            "source": self.source,
            "layers": [
                {
                    **{k: v for k, v in asdict(layer).items() if k not in ("w", "b")},
                    "w": layer.w.tolist(),
                    "b": layer.b.tolist(),
                }
                for layer in self.layers
            ],
        }
        return json.dumps(doc, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> QNet:
        """The network of :meth:`to_json`. Arrays keep the type their values have (a 0.5
        stays a float), so that :func:`gen.core.legal.check_qnet` refuses what is not an integer.
        """
        doc = json.loads(text)
        layers = []
        for k, d in enumerate(doc["layers"]):
            d = dict(d)
            try:
                w, b = np.array(d.pop("w")), np.array(d.pop("b"))
            except ValueError:  # rows of different lengths
                raise ValueError(f"layer {k}: 'w' and 'b' must be rectangular arrays of "
                                 "numbers") from None
            layers.append(QLayer(w=w, b=b, **d))
        fmt = parse_format(doc["format"])
        return cls(doc["name"], fmt, layers, doc.get("source", ""))

    def save(self, path: Path) -> None:
        write_atomic(Path(path), self.to_json())

    @classmethod
    def load(cls, path: Path) -> QNet:
        """Read a ``qnet.json``; a file that is not one is a one-line :class:`UserError`.

        Not checked here: :func:`gen.core.legal.check_qnet` runs where the network is used.
        """
        path = Path(path)
        if not path.is_file():
            raise UserError(f"qnet file {path} does not exist")
        try:
            return cls.from_json(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError,
                AttributeError) as exc:
            reason = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
            raise UserError(f"qnet file {path} is not a readable qnet.json "
                            f"({reason.splitlines()[0] if reason else type(exc).__name__})"
                            ) from None


def pixels_to_input(pixels: np.ndarray, a_bits: int) -> np.ndarray:
    """Map uint8 pixels to unsigned ``a_bits`` input activations (numerics.md, 1).

    Plain wiring in hardware: ``p >> (8 - a_bits)`` or ``p << (a_bits - 8)``.
    """
    p = np.asarray(pixels)
    if p.dtype != np.uint8:
        raise UserError(f"images must be uint8 pixels, got dtype {p.dtype}")
    p = p.reshape(p.shape[0], -1).astype(np.int64) if p.ndim > 1 else p.astype(np.int64)
    if a_bits <= PIXEL_BITS:
        return p >> (PIXEL_BITS - a_bits)
    return p << (a_bits - PIXEL_BITS)


def check_images(images: np.ndarray, n_pixels: int = N_PIXELS) -> np.ndarray:
    """Validate a batch of images: uint8, shape (N, 28, 28) or (N, n_pixels); return (N, n_pixels).

    ``n_pixels`` is 784 for MNIST; other sizes serve networks with other input counts.
    """
    a = np.asarray(images)
    if a.dtype != np.uint8:
        raise UserError(f"images must be uint8, got {a.dtype}")
    if a.ndim == 2 and a.shape[1] == n_pixels:
        return a
    if n_pixels != N_PIXELS:
        raise UserError(f"images must have shape (N, {n_pixels}), got {a.shape}")
    if a.ndim == 3 and a.shape[1:] == (28, 28):
        return a.reshape(a.shape[0], N_PIXELS)
    raise UserError(f"images must have shape (N, 28, 28) or (N, 784), got {a.shape}")


def requantize(acc: np.ndarray, layer: QLayer) -> np.ndarray:
    """ReLU, multiply, round half up by a right shift (or shift left), saturate (numerics.md, 5).

    ``shift >= 1``: ``(r * mult + 2**(shift-1)) >> shift``; ``shift <= 0``:
    ``(r * mult) << -shift``; then the minimum with ``2**out_bits - 1``.
    """
    r = np.maximum(acc, 0)
    top = (1 << layer.out_bits) - 1
    mult = np.asarray(layer.rq_mult, dtype=np.int64)
    shift = np.asarray(layer.rq_shift, dtype=np.int64)
    left = np.maximum(-shift, 0)
    right = np.maximum(shift, 1)  # shifts <= 0 take the left branch below
    if layer.acc_bits + RQ_MULT_BITS + int(np.max(left)) > 62 or np.max(right) > 61:
        r, mult = r.astype(object), mult.astype(object)  # exact beyond int64
        left, right = left.astype(object), right.astype(object)
    p = r * mult
    y = np.where(shift >= 1, (p + (1 << (right - 1))) >> right, p << left)
    return np.minimum(y, top).astype(np.int64)


def forward(qnet: QNet, images: np.ndarray) -> list[np.ndarray]:
    """Run the integer model; return every layer's accumulators, (N, n_out) int64 each."""
    check_qnet(qnet)
    x = pixels_to_input(check_images(images, qnet.layers[0].n_in), qnet.fmt.a_bits)
    accs = []
    for layer in qnet.layers:
        wide = layer.a_bits + layer.w_bits + int(np.ceil(np.log2(layer.n_in + 1))) > 62
        if wide:  # exact in Python ints; never reached by the supported formats
            acc = (x.astype(object) @ layer.w.T.astype(object)) + layer.b.astype(object)
            acc = acc.astype(np.int64)
        else:
            acc = x @ layer.w.T + layer.b
        accs.append(acc)
        if layer.hidden:
            x = requantize(acc, layer)
    return accs


def decide(logits: np.ndarray) -> np.ndarray:
    """The decision rule (numerics.md, 6), for integer accumulators and float logits alike.

    Several outputs: the index of the largest, the lowest index winning a tie. One output
    (the ``zero`` network): 1 when ``logit > 0`` ("the digit is a 0"), else 0.
    """
    logits = np.asarray(logits)
    if logits.shape[-1] == 1:
        return (logits[..., 0] > 0).astype(np.int64)
    return np.argmax(logits, axis=-1).astype(np.int64)  # argmax returns the first maximum


def classify(qnet: QNet, logits: np.ndarray) -> np.ndarray:
    """The network's decision on its last layer's accumulators (:func:`decide`)."""
    return decide(logits)


def targets(labels: np.ndarray, n_out: int) -> np.ndarray:
    """The class a correct network answers for MNIST ``labels``: the label, or for one
    output ("is it a 0?") 1 for label 0 and 0 otherwise."""
    labels = np.asarray(labels).astype(np.int64)
    return (labels == 0).astype(np.int64) if n_out == 1 else labels


def is_correct(qnet: QNet, classes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Compare decisions with MNIST labels (:func:`targets`)."""
    return np.asarray(classes) == targets(labels, qnet.n_classes)


def accuracy(qnet: QNet, images: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of images the integer model classifies correctly."""
    classes = classify(qnet, forward(qnet, images)[-1])
    return float(np.mean(is_correct(qnet, classes, labels)))
