"""Searches and results: serving (serve), training (train), disaggregated pools (disagg) and the
procurement report (report), built on the engine. Never imports render or cli."""
