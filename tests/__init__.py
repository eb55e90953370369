"""Test package (so test modules of the same name in unit/ and integration/ do not collide)."""
