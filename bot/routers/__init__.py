"""One router per feature; `bot.factory.all_routers()` orders them."""
