"""Notifications: alert rules and delivery. Imports crawls, never the reverse."""
