"""Storehouse: command line and settings (entry points only; nothing here is imported by the layers)."""
