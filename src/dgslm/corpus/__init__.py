"""A synthetic two-speaker conversation corpus."""
