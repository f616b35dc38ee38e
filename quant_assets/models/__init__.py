"""Research-layer models: gradient-boosted trees, the temporal fusion transformer, validation and ensembling."""
