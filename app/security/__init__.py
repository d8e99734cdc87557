"""Credentials (OS keyring) and HTTP authentication for archive connections."""
