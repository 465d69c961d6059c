import sys
from pathlib import Path

# tests run with --import-mode=importlib: make the local helper module importable
sys.path.insert(0, str(Path(__file__).parent))
