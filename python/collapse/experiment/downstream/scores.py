"""Accuracy and support-weighted F1 of predicted labels (scikit-learn's f1_score(average="weighted"))."""

from __future__ import annotations

from typing import Dict

import numpy as np


def classification_scores(y_true: np.ndarray, y_pred: np.ndarray) -> Dict[str, float]:
    """accuracy and f1_weighted: per-class F1 (0 where a class has no true or predicted
    positive) averaged with weights = the class's share of y_true."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    accuracy = float(np.mean(y_true == y_pred)) if y_true.size else float("nan")
    f1 = 0.0
    for c in np.unique(y_true):
        tp = float(np.sum((y_pred == c) & (y_true == c)))
        predicted, actual = float(np.sum(y_pred == c)), float(np.sum(y_true == c))
        denom = predicted + actual
        f1 += (actual / y_true.size) * (2.0 * tp / denom if denom else 0.0)
    return {"accuracy": accuracy, "f1_weighted": float(f1)}
