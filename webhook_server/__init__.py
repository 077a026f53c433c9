"""webhook_server package."""
