"""Compatibility with other implementations 'checkpoints."""
