"""validate component."""
