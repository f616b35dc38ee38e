"""The model deployment policy: how a challenger earns capital and when it loses it.

One resource, read by the daily ``model_deployment`` (the shadow record's test, the canary's
stages and floors) and shown in the report, so the numbers a user reads are the numbers that
decided (``quant_assets/models/deployment.py``).
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from quant_core.conventions import LABEL_HORIZON_SESSIONS


class DeploymentPolicy(dg.ConfigurableResource):
    """Promotion: the challenger's daily Rank IC minus the champion's, on the same names and
    realised labels, over the last ``shadow_sessions`` shadow sessions; promoted to a canary
    when the one-sided t-test with Newey-West variance (``hac_lags``: the label overlaps this
    many following sessions) gives p <= ``promotion_pvalue`` and the mean is positive.

    Canary: the live book is ``(1 - f)`` champion book + ``f`` challenger book for f in
    ``canary_fractions``, each held ``canary_stage_sessions`` sessions, then the challenger is
    champion. Rolled back to the champion when the challenger's book, since the canary began,
    draws down by ``canary_max_drawdown`` or more, or its mean realised Rank IC (once
    ``canary_min_ic_sessions`` are realised) is below ``canary_min_ic``."""

    shadow_sessions: int = 60
    # Newey-West is liberal on 60 overlapping sessions: 0.01 holds the false-promotion rate of
    # a challenger no better than the champion at 4.5% (simulated; README, "Model operations")
    promotion_pvalue: float = 0.01
    hac_lags: int = LABEL_HORIZON_SESSIONS - 1
    canary_fractions: list[float] = Field(default_factory=lambda: [0.05, 0.25, 1.0])
    canary_stage_sessions: int = 5
    canary_max_drawdown: float = 0.05
    canary_min_ic: float = 0.0
    canary_min_ic_sessions: int = 5

    def check_consistent(self) -> None:
        fractions = self.canary_fractions
        if not fractions or fractions[-1] != 1.0 or sorted(fractions) != fractions:
            raise ValueError(
                f"canary_fractions {fractions} must rise to 1.0 (the last stage is the whole book)"
            )
        if not fractions[0] > 0.0:
            raise ValueError(f"canary_fractions {fractions} must be positive")
        if self.shadow_sessions < 2 * (self.hac_lags + 1):
            raise ValueError(
                f"shadow_sessions {self.shadow_sessions} is too short for a Newey-West "
                f"variance with {self.hac_lags} lags"
            )
