"""The command line: typer commands that parse the edge, call plan/check/calibration and render. No math."""
