"""Scoring: the one place numbers are computed from stored runs. `inputs` reads the runs (from a
store or a `results/` directory), `rules` states how seeds and tasks aggregate, `tasks` knows
each task's metrics and standard settings, `boards` builds the leaderboards, `suite` the suite
score, and `regressions` the changes over time. Computes; renders nothing, and never imports
`harness.publish`.
"""
