"""Telegram bot: routers, 2FA prompts, notifications."""
