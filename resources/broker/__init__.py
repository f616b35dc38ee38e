"""Paper brokers: the protocol, the simulated broker on engine_rs, Alpaca's paper API."""
