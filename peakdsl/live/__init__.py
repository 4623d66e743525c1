"""Live trading: the engine driven one closed bar at a time, gated, with durable state."""
