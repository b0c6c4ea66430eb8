"""`make bench`: what a user of dagtrigger feels, each measured against a baseline in the same run.

`python -m bench` measures cold starts against the vendors' samples, requests per warm event, an
SQS batch against a slow stand-in, and triggers into a real Airflow 3 against a raw client, with
and without a realistic round trip; it writes docs/benchmarks.md. It reports; it never fails on a
missed target.
"""
