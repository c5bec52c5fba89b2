"""What reading one input gives the page: each slot's answer (``SlotResult``) and the whole (``Analysis``), with the
limits the page states. Plain records, apart from the code that fills them (webapp/analysis.py), so the draw tab's
text, its memory and the keeping code read them without reaching the models.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recognizer.answers import AnswerSet
from recognizer.conformal import DEFAULT_LEVEL
from recognizer.inference import Prediction
from recognizer.labels import same_character

TOP_K = 5  # answers shown per slot
MAX_UPLOAD_MB = 10  # an upload larger than this is refused before it is decoded
PREVIEW_SIZE = 224  # the 28x28 model input (and its saliency map) is shown enlarged to this many pixels
EMPTY_MESSAGE = "Draw a character (or upload a photo of one) and the three models will read it."


@dataclass
class SlotResult:
    """One comparison slot's answer; ``error`` says why there is none."""

    model: str | None
    prediction: Prediction | None = None
    saliency: np.ndarray | None = None  # (S, S, 3) uint8 overlay
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.prediction is not None


@dataclass
class Analysis:
    """Everything the page shows for one input. ``message`` is set when there is nothing to predict."""

    x28: np.ndarray | None
    message: str | None = None
    kind: str | None = None  # "empty", "bad", "no_models" or None
    slots: list[SlotResult] = field(default_factory=list)
    mode: str = "anything"  # "What are you drawing?" (recognizer.answers.MODES)
    level: float = DEFAULT_LEVEL  # the sets' stated coverage
    together: AnswerSet | None = None  # the three slots together, where that beat each of them

    @property
    def agree(self) -> bool | None:
        """Whether every slot that answered reads the same character (case merged); None under two answers."""
        chars = [s.prediction.char for s in self.slots if s.prediction is not None]
        if len(chars) < 2:
            return None
        return all(same_character(chars[0], c) for c in chars[1:])
