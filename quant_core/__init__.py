"""What every layer shares and nothing in it depends on: the trading calendar, the conventions
(annualisation, label horizon, CPCV defaults), the feature names, the portfolio metrics and the
sector grouping.

It sits below both ``resources`` and ``quant_assets`` (and the applications in ``apps``): it
imports none of them.
"""
