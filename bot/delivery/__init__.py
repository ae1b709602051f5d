"""Delivery: route alerts to destinations, hold or skip them, drain the outbox."""
