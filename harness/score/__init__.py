"""Scoring: the rules that turn stored runs into per-method scores, the leaderboards built from
them, suite scores, and regression detection over time. Computes; renders nothing.
"""
