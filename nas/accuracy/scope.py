"""What an accuracy estimator scores, declared in its file, and the check that a search asks it
for nothing else.

An estimator is only meaningful for the networks it was made on: the space and the dimensions
its supernet held fixed (Once-for-All's predictor knows width 1.2 only), the input resolutions
it saw, the form of the network (the deployed one, or the small-image proxy a supernet trains
here), input channels and classes, the data set and the metric. A search prices exactly that
network on the device, so latency and accuracy are about the same network. A raw score may also
carry a mapping onto a published scale (e.g. ImageNet top-1 after fine-tuning), with the error
the mapping was measured to have.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from common.errors import InputError
from common.values import is_number

FORMS = ("deployed", "proxy")
# bounds a real image classifier lies within; a file outside them is damaged, not ambitious
MIN_RESOLUTION, MAX_RESOLUTION, MAX_CHANNELS, MAX_CLASSES = 8, 1024, 64, 100_000


class ScopeMismatch(InputError):
    """A search asks an estimator for networks it does not score."""


@dataclass(frozen=True)
class Mapping:
    """mapped = slope * raw + intercept (both fractions), and how far it was off on the networks
    it was fitted on, each left out in turn."""

    slope: float
    intercept: float
    to: str  # what the mapped number is
    loo_rmse_points: float
    loo_max_points: float
    fitted_on: tuple[str, ...]
    raw_range: tuple[float, float]  # the raw scores of the networks it was fitted on
    source: str

    def __post_init__(self) -> None:
        numbers = (self.slope, self.intercept, self.loo_rmse_points, self.loo_max_points, *self.raw_range)
        if not all(is_number(x) for x in numbers) or self.loo_rmse_points < 0 or len(self.raw_range) != 2:
            raise InputError("mapping: slope, intercept, errors and raw_range must be finite (errors >= 0)")
        if self.raw_range[0] > self.raw_range[1]:
            raise InputError(f"mapping: raw_range {list(self.raw_range)} is not low..high")

    def __call__(self, raw):
        return self.slope * raw + self.intercept

    def covers(self, raw: float) -> bool:
        """Is `raw` within the scores the mapping was fitted on (where its error was measured)?"""
        return self.raw_range[0] <= raw <= self.raw_range[1]


@dataclass(frozen=True)
class Scope:
    """The networks an estimator scores and what its score is (the module docstring says why)."""

    space: str
    pinned: dict[str, Any]  # dimensions held at one value, e.g. {"width": 1.2}
    resolutions: tuple[int, ...]  # input resolutions scored
    form: str  # "deployed" or "proxy"
    in_channels: int
    classes: int
    data: str
    metric: str  # what the raw score is, in words
    mapping: Mapping | None = None
    space_args: dict[str, Any] = field(default_factory=dict)  # the space's other arguments, e.g. {"stages": 1}

    def __post_init__(self) -> None:
        if self.form not in FORMS:
            raise InputError(f"form {self.form!r}: one of {', '.join(FORMS)}")
        if not self.resolutions or not all(MIN_RESOLUTION <= r <= MAX_RESOLUTION for r in self.resolutions):
            raise InputError(f"resolutions must be {MIN_RESOLUTION}..{MAX_RESOLUTION} px, got {list(self.resolutions)}")
        if not (1 <= self.in_channels <= MAX_CHANNELS and 1 <= self.classes <= MAX_CLASSES):
            raise InputError(
                f"in_channels {self.in_channels} (1..{MAX_CHANNELS}) or classes {self.classes} (1..{MAX_CLASSES})"
            )
        if set(self.space_args) & {"num_classes", "in_channels", "resolutions"}:
            raise InputError("space_args: num_classes, in_channels and resolutions are the scope's own fields")
        if self.form == "proxy" and len(self.resolutions) != 1:
            raise InputError("a proxy-form estimator scores one resolution (the supernet's)")

    def describe(self) -> str:
        """One line: what networks this scores."""
        pinned = ", ".join(f"{k} {v}" for k, v in self.pinned.items())
        return (
            f"{self.space}{f' ({pinned})' if pinned else ''}, {self.form} form at {_resolutions(self.resolutions)}, "
            f"{self.in_channels} input channel{'s' if self.in_channels != 1 else ''}, {self.classes} classes, "
            f"{self.data}"
        )

    def check(
        self, space: str, width: float | None = None, resolution: int | None = None, form: str | None = None
    ) -> None:
        """Raises ScopeMismatch naming what is asked and what this scores."""
        if space != self.space:
            raise ScopeMismatch(f"scores the {self.space} space, not {space}")
        if width is not None and "width" in self.pinned and width != self.pinned["width"]:
            raise ScopeMismatch(f"scores width {self.pinned['width']} only, not width {width}")
        if form is not None and form != self.form:
            raise ScopeMismatch(f"scores the {self.form} form, not the {form} form")
        if resolution is not None and resolution not in self.resolutions:
            raise ScopeMismatch(
                f"scores the {self.form} form at {_resolutions(self.resolutions)}, not a {resolution} px input"
            )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["resolutions"] = list(self.resolutions)
        if self.mapping is not None:
            out["mapping"]["fitted_on"] = list(self.mapping.fitted_on)
            out["mapping"]["raw_range"] = list(self.mapping.raw_range)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scope:
        """Raises KeyError, TypeError or ValueError on a malformed block (the loader names the file)."""
        mapping = data.get("mapping")
        if mapping is not None:
            mapping = Mapping(
                float(mapping["slope"]),
                float(mapping["intercept"]),
                str(mapping["to"]),
                float(mapping["loo_rmse_points"]),
                float(mapping["loo_max_points"]),
                tuple(str(n) for n in mapping["fitted_on"]),
                (float(mapping["raw_range"][0]), float(mapping["raw_range"][1])),
                str(mapping["source"]),
            )
        return cls(
            space=str(data["space"]),
            pinned=dict(data["pinned"]),
            resolutions=tuple(int(r) for r in data["resolutions"]),
            form=str(data["form"]),
            in_channels=int(data["in_channels"]),
            classes=int(data["classes"]),
            data=str(data["data"]),
            metric=str(data["metric"]),
            mapping=mapping,
            space_args=dict(data.get("space_args", {})),
        )


def _resolutions(resolutions: tuple[int, ...]) -> str:
    if len(resolutions) == 1:
        return f"{resolutions[0]} px"
    steps = {b - a for a, b in zip(resolutions, resolutions[1:])}
    if len(steps) == 1:
        return f"{resolutions[0]}..{resolutions[-1]} px (step {steps.pop()})"
    return f"{', '.join(map(str, resolutions))} px"
