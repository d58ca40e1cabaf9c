"""Configuration: settings from the environment, credentials, logging, Redis and the broker."""
