"""Identity, session binding, per-identity rate limits and upstream credentials.

- :class:`~mcp_gateway.identity.addon.IdentityAddon` (mitmproxy addon, option ``mcp_config``)
  registers two pipeline stages: ``identify`` (:class:`.identify.IdentifyStage`) and
  ``limits`` (:class:`.limits.LimitsStage`).
- ``mcp-gateway keys create|list|revoke`` (:mod:`.cli`) manages gateway API keys.
"""

from .identify import Identity

__all__ = ["Identity"]
