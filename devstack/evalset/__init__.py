"""The labelled compliance evaluation set (calls.py: the calls and labels; labels.py: what a leak
is; run.py: the calls through the real post-call pieces, and the scores)."""
