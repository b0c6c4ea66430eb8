"""`make bench`: dagtrigger's speed and memory, each measured against a baseline in the same run.

`python -m bench` runs every measurement (cold start, warm per-event cost, requests per event,
an SQS batch, sustained triggers into a real Airflow 3), prints the tables and writes
docs/benchmarks.md with its plots. It reports; it never fails on a missed target.
"""
