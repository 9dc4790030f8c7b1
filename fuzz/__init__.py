"""OpenAPI-driven fuzzing of the example site with schemathesis (``python fuzz/run_fuzz.py``)."""
