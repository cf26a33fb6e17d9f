"""Leaderboards built from results stores (ranking, export, publishing)."""
