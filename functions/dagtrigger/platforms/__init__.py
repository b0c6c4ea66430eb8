"""Adapters from each serverless platform's envelope to the core, and from its outcome back."""
