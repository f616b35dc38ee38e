"""Portfolio construction and risk: ML views, allocation methods, risk measures, performance."""
