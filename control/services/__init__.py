"""Business logic behind the API, the console and the RQ tasks: no HTTP in here."""
