"""Raw ridership to clean series: reading the portal's three file shapes, the validation rules
and de-duplication, merging by date, which series a run forecasts (activity: closed, suspended
or new series), and the deterministic synthetic files used by tests and benchmarks.
"""
