"""Submissions: the portable bundle format, submitting runs as a method's result, verification and
its statuses, signatures, and the published results directory.
"""
