"""Tools for people who own policies: check, test, explain, diff and replay them without live traffic.

The proxy itself never imports this package; it reads policies through app.policy and nothing here changes how they run.
"""
