"""Local stand-in servers used by tests and the sandbox stack."""
