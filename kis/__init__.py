"""KIS Open API: REST client, fill-notice WebSocket client and a local simulator.

Knows nothing of users or Telegram.
"""
