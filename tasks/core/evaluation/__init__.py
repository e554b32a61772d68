"""Scoring stored forecasts against actuals and presenting the result: the metrics table and
leaderboards (per series and aggregated over many), alerts, the report's pages and charts, and
Prefect artifact payloads as plain data.
"""
