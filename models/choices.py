"""The choices a study offers, importable without numpy or pandas (so that ``--help`` and
an argument error answer at once)."""

from __future__ import annotations

#: The validation schemes of a study; ``auto`` picks holdout or cv; ``loo`` is
#: leave-one-patient-out cross-validation.
VALIDATIONS: tuple[str, ...] = ("auto", "holdout", "cv", "loo", "bootstrap")
#: How a saved model is updated for a new site (``train.py --update --method``).
UPDATE_METHODS: tuple[str, ...] = ("intercept", "logistic", "refit", "auto")
#: The default decision threshold on the calibrated probability: call the positive class
#: when it is the more likely diagnosis (equal harms).
DEFAULT_THRESHOLD = 0.5
