"""Sensors: tenant discovery, manual sync requests, run-failure alerts."""
