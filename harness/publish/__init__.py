"""Publishing: the static site. It renders the boards, changes and submissions `harness.score`
and `harness.submit` give it and computes nothing itself: `site` orders the build, `pages`
renders one kind of page each, `templates`, `links`, `writer` and `downloads` are their tools,
`history` and `plots` draw the charts.
"""
