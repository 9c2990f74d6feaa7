"""`streamlearn bench`: the product's figures measured as deployed, in one run (see run.py).

load (producers, watcher), ceilings (raw consume, bare Faust, Quix), champion (history and the
first model), paced + phases (each measured phase), side_load (retrain and analyst beside
scoring), search, figures and targets (pure), tables (output), run (the order of it all).
"""
