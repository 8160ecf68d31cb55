"""Agreement with the literature: `tpplan validate` (microbenchmarks and published figures), the e2e
rows (e2e) and `tpplan calibrate` (fitting catalog efficiencies to a user's own microbenchmarks)."""
