"""Running one measurement: the run's lifecycle, recorder and liveness, method loading and
confinement, output capture and the machine's provenance. A run goes runner -> task -> store and
never climbs back.
"""
