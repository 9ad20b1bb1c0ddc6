"""Reports: every way a result leaves gaverify.

terminal.py owns all terminal output (rich); formats.py is the registry of
file formats (JSON, JUnit, Markdown, PNG), each rendered from the JSON
result; environment.py collects the versions and hardware a report names.
"""
