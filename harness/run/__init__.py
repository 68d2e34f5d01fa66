"""Running one measurement: `runner` (the lifecycle: prepare, execute, store), `recorder` (the
context a task records into), `liveness` (heartbeats and reaping dead runs), `provenance`,
`methods` (loading a method), `confine` (running one confined) and `machine` (this machine's
fingerprint). A run goes runner -> task -> store and never climbs back; what it returns is the
stored run, a `RunRecord`.
"""
