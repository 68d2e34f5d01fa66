"""Publishing: the static site. It renders the boards, changes and submissions it is given and
computes nothing itself.
"""
