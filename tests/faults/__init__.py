"""Fault injection: the running system survives lost workers, a lost queue, database and storage outages."""
