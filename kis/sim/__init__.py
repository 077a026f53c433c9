"""A local server speaking KIS's REST and WebSocket protocol (see SPEC section 10)."""
