"""Local stand-ins that speak the clouds' protocols on loopback, for integration tests."""
