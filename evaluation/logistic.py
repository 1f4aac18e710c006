"""L2-regularised logistic regression by full-batch L-BFGS, in float64: the fit behind both shipped
de-identification models (:mod:`clinical_mm.evaluation.deid_training`). The same inputs give the same
weights when torch runs on one thread."""

from __future__ import annotations

from typing import Any

__all__ = ["fit_logistic"]


def fit_logistic(x: Any, xt: Any, y: Any, c: float, balanced: bool = True) -> tuple[list[float], float]:
    """Coefficients and intercept of an L2 logistic regression on the sparse float64 matrix ``x`` and the 0/1
    labels ``y`` (sklearn's objective with inverse strength ``c``; classes weighted to balance when
    ``balanced``) by full-batch L-BFGS; ``xt`` is ``x`` transposed, for the gradient computed by hand (autograd
    through a sparse product is slow)."""
    import torch

    n_pos = float(y.sum())
    sample_weight = (torch.where(y > 0, len(y) / (2 * n_pos), len(y) / (2 * (len(y) - n_pos))) if balanced
                     else torch.ones_like(y))
    coef = torch.zeros(x.shape[1], dtype=torch.float64)
    intercept = torch.zeros(1, dtype=torch.float64)
    coef.grad, intercept.grad = torch.zeros_like(coef), torch.zeros_like(intercept)
    opt = torch.optim.LBFGS([coef, intercept], lr=1.0, max_iter=500, tolerance_grad=1e-7, tolerance_change=1e-10,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure() -> float:
        z = (x @ coef.unsqueeze(1)).squeeze(1) + intercept
        loss = c * (sample_weight * torch.nn.functional.binary_cross_entropy_with_logits(
            z, y, reduction="none")).sum() + 0.5 * (coef * coef).sum()
        residual = c * sample_weight * (torch.sigmoid(z) - y)
        torch.add((xt @ residual.unsqueeze(1)).squeeze(1), coef, out=coef.grad)
        torch.sum(residual, dim=0, keepdim=True, out=intercept.grad)
        return float(loss)

    opt.step(closure)  # type: ignore[no-untyped-call]
    return [float(v) for v in coef.tolist()], float(intercept)
