"""The proof that a dataset made the model better: the suites' arithmetic (intervals,
measures against their targets) both sides share."""
