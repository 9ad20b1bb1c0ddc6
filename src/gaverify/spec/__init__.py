"""The scenario: what a user can write in a scenario file, and nothing heavy.

Owns the schema (schema.py, sections.py, tolerances.py), turning YAML files
and `--set` overrides into a validated Scenario (loading.py), the bundled
scenarios (bundled.py), the starter file (starter.py) and the declaration of
every backend a scenario can name (backends.py). Imports no torch.
"""
