"""aiohttp web server: TradingView webhook, health, metrics; and the order pipeline."""
