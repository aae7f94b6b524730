"""Outputs for people and files: canonical JSON written atomically, readable
tables for the terminal, pandas frames (``--format csv|parquet``), figures and
the HTML/Markdown report (``pooling report``)."""
