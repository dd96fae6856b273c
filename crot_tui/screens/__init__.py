"""Screens: dashboard, coin inspector, settings editor, help, replay summary, confirmations."""
