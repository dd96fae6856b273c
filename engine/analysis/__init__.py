"""Analysis of a run's audit record: Fama-MacBeth regressions of outcomes on entry-filter
values (Newey-West t-statistics), triple-barrier labels of signals, realised win rates
against the break-even win rate the risk/reward settings imply, and reports (`crot analyze`).
"""
