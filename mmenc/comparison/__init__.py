"""Zero-shot comparison: datasets, metrics, the harness (``mmenc.compare``) and its reports.

The modules are imported on demand (``mmenc.comparison.datasets``, ``...metrics``,
``...report``, ``...harness``), so that importing this package costs nothing.
"""
