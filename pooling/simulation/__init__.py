"""Monte Carlo stress test of a solved plan, and stress scenarios applied to an
instance."""
