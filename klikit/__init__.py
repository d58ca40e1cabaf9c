"""The klikit partner-API client."""
