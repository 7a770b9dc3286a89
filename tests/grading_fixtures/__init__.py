"""Helpers for tests/test_grading.py: tiny synthetic chapters and adversarial submissions."""
