"""Scanning for secrets and personal data: rule packs, the engine, the pipeline stage."""

from .engine import Detection, Engine

__all__ = ["Detection", "Engine"]
